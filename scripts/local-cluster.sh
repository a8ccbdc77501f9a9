# Sourced by the measuring scripts: starts a local `quorum cluster`, waits
# until it answers, finds its leader, and stops it when the script exits.
#
#   start_local_cluster BIN PROTOCOL NODES PEER_PORT CLIENT_PORT [FLAG...]
#
# Sets `cluster_pid`, `dir` (its data directory, removed at exit) and
# `leader` (1-based; 1 when no node says it leads, as in Basic Paxos).
start_local_cluster() {
    local bin="$1" protocol="$2" nodes="$3" peer_port="$4" client_port="$5"
    shift 5
    dir="$(mktemp -d)"
    RUST_LOG=warn "$bin" cluster --protocol "$protocol" --nodes "$nodes" --dir "$dir" \
        --peer-port "$peer_port" --client-port "$client_port" "$@" >"$dir/cluster.out" 2>"$dir/cluster.log" &
    cluster_pid=$!
    trap stop_local_cluster EXIT
    for _ in $(seq 100); do
        if redis-cli -p "$client_port" SET ready 1 2>/dev/null | grep -q OK; then break; fi
        sleep 0.1
    done
    if ! kill -0 "$cluster_pid" 2>/dev/null; then
        echo "the cluster did not start:" >&2
        cat "$dir/cluster.out" "$dir/cluster.log" >&2
        exit 1
    fi
    leader=1
    for i in $(seq 1 "$nodes"); do
        if redis-cli -p $((client_port + i - 1)) INFO 2>/dev/null | grep -q "^role:leader"; then leader=$i; fi
    done
}

stop_local_cluster() {
    kill -TERM "$cluster_pid" 2>/dev/null || true
    wait "$cluster_pid" 2>/dev/null || true
    rm -rf "$dir"
}
