//! The embedding example (`cargo run --example lock_service`) must show what it
//! claims: the same modules, run here as a test.

#[path = "../examples/lock_service/client.rs"]
mod client;
#[path = "../examples/lock_service/cluster.rs"]
mod cluster;
#[path = "../examples/lock_service/diagram.rs"]
mod diagram;
#[path = "../examples/lock_service/lock.rs"]
mod lock;
#[path = "../examples/lock_service/story.rs"]
mod story;

#[test]
fn the_lock_service_on_a_real_raft_cluster_fences_off_a_paused_holder() {
    let (story, diagram) = story::run();
    assert!(story.passed(), "the lock service example failed its own claims:\n{}", story.narration());
    assert!(story.checks.len() >= 10, "the story checks fewer claims than it tells:\n{}", story.narration());
    let mermaid = diagram.render();
    assert!(mermaid.starts_with("sequenceDiagram\n"), "{mermaid}");
    for arrow in ["alice->>cluster: acquire", "storage-->>alice: rejected: token 1 is older than token 2"] {
        assert!(mermaid.contains(arrow), "the diagram lacks '{arrow}':\n{mermaid}");
    }
}
