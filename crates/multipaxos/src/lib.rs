//! Multi-Paxos (in progress).
