package objectstore

import (
	"context"
	"fmt"
	"iter"
	"strings"
)

// Prefixed is a Store that keeps every key under a fixed prefix of an
// underlying store, so that several deployments (or a deployment and other
// data) can share one bucket. Keys seen by callers never include the prefix.
type Prefixed struct {
	store  Store
	prefix string // empty, or ends with "/"
}

var _ Store = (*Prefixed)(nil)

// WithPrefix returns store itself when prefix is empty, and otherwise a
// Store that maps key to prefix + "/" + key. Leading and trailing slashes in
// prefix are ignored.
func WithPrefix(store Store, prefix string) (Store, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return store, nil
	}
	if err := ValidateKey(prefix); err != nil {
		return nil, fmt.Errorf("store prefix: %w", err)
	}
	return &Prefixed{store: store, prefix: prefix + "/"}, nil
}

func (p *Prefixed) full(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return p.prefix + key, nil
}

// Put implements Store.
func (p *Prefixed) Put(ctx context.Context, key string, data []byte) error {
	full, err := p.full(key)
	if err != nil {
		return err
	}
	return p.store.Put(ctx, full, data)
}

// Get implements Store.
func (p *Prefixed) Get(ctx context.Context, key string) ([]byte, error) {
	full, err := p.full(key)
	if err != nil {
		return nil, err
	}
	return p.store.Get(ctx, full)
}

// GetRange implements Store.
func (p *Prefixed) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	full, err := p.full(key)
	if err != nil {
		return nil, err
	}
	return p.store.GetRange(ctx, full, off, length)
}

// Stat implements Store.
func (p *Prefixed) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	full, err := p.full(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	info, err := p.store.Stat(ctx, full)
	if err != nil {
		return ObjectInfo{}, err
	}
	info.Key = key
	return info, nil
}

// Delete implements Store.
func (p *Prefixed) Delete(ctx context.Context, key string) error {
	full, err := p.full(key)
	if err != nil {
		return err
	}
	return p.store.Delete(ctx, full)
}

// List implements Store.
func (p *Prefixed) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return p.ListAfter(ctx, prefix, "")
}

// ListAfter implements ListerAfter, with the underlying store's when it
// has one.
func (p *Prefixed) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[ObjectInfo, error] {
	if after != "" {
		after = p.prefix + after
	}
	return func(yield func(ObjectInfo, error) bool) {
		for info, err := range ListAfter(ctx, p.store, p.prefix+prefix, after) {
			if err == nil {
				info.Key = strings.TrimPrefix(info.Key, p.prefix)
			}
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

// Close closes the underlying store.
func (p *Prefixed) Close() error { return Close(p.store) }
