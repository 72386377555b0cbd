package httpapi

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/metadata"
)

func TestAPITopicBodies(t *testing.T) {
	at := newAPITest(t, Options{})
	rec := at.do("POST", "/v1/topics", strings.NewReader(`{"name":"orders","partitions":8,"retention_ms":3600000}`))
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if got, want := rec.Body.String(), `{"name":"orders","partitions":8,"retention_ms":3600000}`+"\n"; got != want {
		t.Errorf("create body = %s, want %s", got, want)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/topics/orders" {
		t.Errorf("Location = %q", loc)
	}
	if want := (ingest.TopicConfig{Name: "orders", Partitions: 8, RetentionMS: 3600000}); !reflect.DeepEqual(at.svc.created, []ingest.TopicConfig{want}) {
		t.Errorf("CreateTopic got %+v, want %+v", at.svc.created, want)
	}

	rec = at.do("GET", "/v1/topics", nil)
	if got, want := rec.Body.String(), `{"topics":[]}`+"\n"; got != want {
		t.Errorf("empty list = %s, want %s", got, want)
	}
	at.svc.topics = []ingest.TopicConfig{{Name: "a", Partitions: 1}, {Name: "b", Partitions: 2, RetentionMS: 5}}
	rec = at.do("GET", "/v1/topics", nil)
	if got, want := rec.Body.String(), `{"topics":[{"name":"a","partitions":1,"retention_ms":0},{"name":"b","partitions":2,"retention_ms":5}]}`+"\n"; got != want {
		t.Errorf("list = %s, want %s", got, want)
	}

	at.svc.describe = ingest.TopicDescription{
		TopicConfig:    ingest.TopicConfig{Name: "orders", Partitions: 2},
		PartitionStats: []metadata.PartitionStats{{Partition: 0, LogStartOffset: 0, HighWatermark: 10}, {Partition: 1, LogStartOffset: 4, HighWatermark: 7}},
	}
	rec = at.do("GET", "/v1/topics/orders", nil)
	want := `{"name":"orders","partitions":2,"retention_ms":0,"partition_stats":[{"partition":0,"log_start_offset":0,"high_watermark":10},{"partition":1,"log_start_offset":4,"high_watermark":7}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("describe = %s, want %s", rec.Body, want)
	}
}
