package recovery

import "context"

// Tick runs one round of the checkpoint job, as Run does every interval,
// and reports whether it wrote a checkpoint.
func (c *Checkpointer) Tick(ctx context.Context) (bool, error) { return c.tick(ctx) }
