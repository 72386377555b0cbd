package metadata

import (
	"fmt"
	"testing"
)

func TestLayoutRoundTrip(t *testing.T) {
	// Records to partitions 5, 2, 5, 5, 2 make batches [5, 2].
	layout := EncodeLayout([]int32{5, 2}, []int{0, 1, 0, 0, 1})
	if layout != "5,2;0*1,1*1,0*2,1*1" {
		t.Fatalf("layout = %q", layout)
	}
	got, err := DecodeLayout(layout, []int64{100, 7})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[{5 100} {2 7} {5 101} {5 102} {2 8}]"; fmt.Sprint(got) != want {
		t.Fatalf("positions = %v, want %s", got, want)
	}
	byBatch := BatchOrderLayout([]int32{5, 2}, []int{3, 2})
	got, err = DecodeLayout(byBatch, []int64{100, 7})
	if err != nil || fmt.Sprint(got) != "[{5 100} {5 101} {5 102} {2 7} {2 8}]" {
		t.Fatalf("batch-order positions = %v, %v", got, err)
	}
	for _, bad := range []string{"", "5", "x;0*1", "5;1*1", "5;0*0", "5;0-1", "5,2;0*1"} {
		if _, err := DecodeLayout(bad, []int64{1}); err == nil {
			t.Errorf("DecodeLayout(%q) succeeded", bad)
		}
	}
}
