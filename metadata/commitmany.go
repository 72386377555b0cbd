package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ChunkCommit is one commit of CommitChunks: what Commit takes.
type ChunkCommit struct {
	Topic   Topic
	ChunkID string
	Batches []Batch
}

// CommitChunks applies the commits as Commit would (except that it commits
// chunks of any age), one after another in
// slice order, but sends them in one pipeline: rebuilding the index from
// the bucket commits thousands of chunks, and one round trip each would
// dominate. Order holds because Redis runs one connection's commands in
// order (on Redis Cluster, in order per node, which keeps every topic's
// commits in order).
//
// It returns one result per commit. If a commit fails, it returns the
// results before it and the error; commits after it may or may not have
// been applied, and since every commit is idempotent per chunk, calling
// CommitChunks again with the same commits is safe.
func (s *Store) CommitChunks(ctx context.Context, commits []ChunkCommit) ([]CommitResult, error) {
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, len(commits))
	for i, c := range commits {
		keys, args, err := s.commitCall(c.Topic, c.ChunkID, c.Batches, 0)
		if err != nil {
			return nil, err
		}
		calls[i] = call{keys, args}
	}
	run := func() []*redis.Cmd {
		cmds := make([]*redis.Cmd, len(calls))
		// Errors are per command and read below; Pipelined's own error
		// is the first of them.
		_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = commitScript.EvalSha(ctx, p, c.keys, c.args...)
			}
			return nil
		})
		return cmds
	}
	cmds := run()
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Redis restarted or flushed its scripts: load the script and
			// send everything again, which the commits' idempotence allows.
			if err := commitScript.Load(ctx, s.rdb).Err(); err != nil {
				return nil, unavailable("load commit script", err)
			}
			cmds = run()
			break
		}
	}
	results := make([]CommitResult, 0, len(commits))
	for i, cmd := range cmds {
		c := commits[i]
		reply, err := cmd.Text()
		if err != nil {
			return results, scriptError("commit "+c.ChunkID+" to", c.Topic.Name, err)
		}
		res, err := parseCommitReply(reply, len(c.Batches))
		if err != nil {
			return results, fmt.Errorf("commit %s to %s: %w", c.ChunkID, c.Topic.Name, err)
		}
		results = append(results, res)
	}
	return results, nil
}
