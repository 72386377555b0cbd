package metadata

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// IndexEntries returns the number of chunk index entries of every topic
// together (ZCARD of each partition's index, summed): the figure that
// retention and compaction keep bounded, and that soak runs watch. It
// costs one ZCARD per partition, sent in one pipeline, after the topic
// listing. A topic deleted between the two reads counts as empty.
func (s *Store) IndexEntries(ctx context.Context) (int64, error) {
	topics, err := s.Topics(ctx)
	if err != nil {
		return 0, err
	}
	var cards []*redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range topics {
			for i := range t.Partitions {
				cards = append(cards, p.ZCard(ctx, s.indexKey(t.Name, int32(i))))
			}
		}
		return nil
	})
	if err != nil {
		return 0, unavailable("count index entries", err)
	}
	var n int64
	for _, c := range cards {
		n += c.Val()
	}
	return n, nil
}
