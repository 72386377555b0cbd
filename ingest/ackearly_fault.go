//go:build mamba_fault_ackearly

package ingest

// ackEarly makes every produce answer as soon as its records are buffered,
// before the chunk is uploaded: a deliberately broken node that loses
// acknowledged records when it dies. Only the fault suite builds with the
// mamba_fault_ackearly tag, to check that its checker reports the loss.
const ackEarly = true
