package objectstore_test

import (
	"testing"

	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) objectstore.Store { return objectstore.NewMemory() })
}

func TestPrefixedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objectstore.Store {
		base := objectstore.NewMemory()
		// Objects outside the prefix must stay invisible to the wrapper.
		if err := base.Put(t.Context(), "other/outside", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := base.Put(t.Context(), "tenant-b/inside-other", []byte("x")); err != nil {
			t.Fatal(err)
		}
		s, err := objectstore.WithPrefix(base, "/tenant/")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
