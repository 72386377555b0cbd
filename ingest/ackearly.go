//go:build !mamba_fault_ackearly

package ingest

// ackEarly is false in every real build: a produce is answered only after
// its chunk is in the bucket and committed. The mamba_fault_ackearly build
// tag turns it on to prove that the fault suite (internal/tooling/faultsuite)
// detects a node that acknowledges too early.
const ackEarly = false
