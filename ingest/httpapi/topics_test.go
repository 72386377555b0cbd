package httpapi

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/metadata"
)

func TestAPITopicBodies(t *testing.T) {
	at := newAPITest(t, Options{})
	rec := at.do("POST", "/v1/topics", strings.NewReader(`{"name":"orders","partitions":8,"retention_ms":3600000}`))
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if got, want := rec.Body.String(), `{"name":"orders","partitions":8,"retention_ms":3600000,"retention_bytes":0}`+"\n"; got != want {
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
	if got, want := rec.Body.String(), `{"topics":[{"name":"a","partitions":1,"retention_ms":0,"retention_bytes":0},{"name":"b","partitions":2,"retention_ms":5,"retention_bytes":0}]}`+"\n"; got != want {
		t.Errorf("list = %s, want %s", got, want)
	}

	at.svc.describe = ingest.TopicDescription{
		TopicConfig: ingest.TopicConfig{Name: "orders", Partitions: 2, RetentionBytes: 1 << 20},
		StoredBytes: 300, Objects: 2, LogStartAge: 1500 * time.Millisecond,
		PartitionStats: []metadata.PartitionStats{{Partition: 0, LogStartOffset: 0, HighWatermark: 10, StoredBytes: 100}, {Partition: 1, LogStartOffset: 4, HighWatermark: 7, StoredBytes: 200}},
	}
	rec = at.do("GET", "/v1/topics/orders", nil)
	want := `{"name":"orders","partitions":2,"retention_ms":0,"retention_bytes":1048576,"stored_bytes":300,"objects":2,"log_start_age_ms":1500,` +
		`"partition_stats":[{"partition":0,"log_start_offset":0,"high_watermark":10,"stored_bytes":100},{"partition":1,"log_start_offset":4,"high_watermark":7,"stored_bytes":200}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("describe = %s, want %s", rec.Body, want)
	}
}

func TestAPIUpdateTopic(t *testing.T) {
	at := newAPITest(t, Options{})
	at.svc.describe = ingest.TopicDescription{
		TopicConfig:    ingest.TopicConfig{Name: "orders", Partitions: 1, RetentionMS: 60000},
		PartitionStats: []metadata.PartitionStats{{Partition: 0}},
	}
	rec := at.do("PATCH", "/v1/topics/orders", strings.NewReader(`{"retention_ms":60000}`), jsonHeader()...)
	if rec.Code != 200 {
		t.Fatalf("patch: %d %s", rec.Code, rec.Body)
	}
	want := `{"name":"orders","partitions":1,"retention_ms":60000,"retention_bytes":0,"stored_bytes":0,"objects":0,"log_start_age_ms":0,` +
		`"partition_stats":[{"partition":0,"log_start_offset":0,"high_watermark":0,"stored_bytes":0}]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("patch answered %s, want the description %s", rec.Body, want)
	}
	rec = at.do("PATCH", "/v1/topics/orders", strings.NewReader(`{"retention_bytes":0}`), jsonHeader()...)
	if rec.Code != 200 {
		t.Fatalf("patch bytes: %d %s", rec.Code, rec.Body)
	}
	if len(at.svc.updated) != 2 || *at.svc.updated[0].RetentionMS != 60000 || at.svc.updated[0].RetentionBytes != nil ||
		at.svc.updated[1].RetentionMS != nil || *at.svc.updated[1].RetentionBytes != 0 {
		t.Fatalf("updates passed on: %+v", at.svc.updated)
	}

	for _, c := range []struct {
		target, body, field string
	}{
		{"/v1/topics/orders", `{}`, "retention_ms, retention_bytes"},
		{"/v1/topics/orders", ``, "body is empty"},
		{"/v1/topics/orders", `{"retention_ms":-1}`, "retention_ms -1"},
		{"/v1/topics/orders", `{"retention_bytes":-5}`, "retention_bytes -5"},
		{"/v1/topics/orders", `{"retention_ms":99999999999999999}`, "retention_ms 99999999999999999"},
		{"/v1/topics/orders", `{"retention_bytes":2000000000000000000}`, "retention_bytes 2000000000000000000"},
		{"/v1/topics/orders", `{"retention_ms":1e30}`, "retention_ms"},
		{"/v1/topics/orders", `{"retention_ms":"1h"}`, "retention_ms"},
		{"/v1/topics/orders", `{"partitions":3}`, "partitions"},
		{"/v1/topics/orders", `[1]`, "object"},
	} {
		rec := at.do("PATCH", c.target, strings.NewReader(c.body), jsonHeader()...)
		if rec.Code != 400 {
			t.Errorf("%s %s: status %d, want 400", c.target, c.body, rec.Code)
			continue
		}
		if e := errorOf(t, rec); e.Code != "invalid_request" || !strings.Contains(e.Message, c.field) {
			t.Errorf("%s %s: error %+v, want invalid_request naming %q", c.target, c.body, e, c.field)
		}
	}
	if len(at.svc.updated) != 2 {
		t.Fatalf("bad requests reached the service: %+v", at.svc.updated[2:])
	}
	// A name that cannot be a topic is not found, as for every topic path.
	rec = at.do("PATCH", "/v1/topics/bad%20name", strings.NewReader(`{"retention_ms":1}`), jsonHeader()...)
	if e := errorOf(t, rec); rec.Code != 404 || e.Code != "topic_not_found" || !strings.Contains(e.Message, "bad name") {
		t.Fatalf("bad topic name: %d %+v, want 404 topic_not_found", rec.Code, e)
	}
	at.svc.errs["UpdateTopic"] = ingest.ErrTopicNotFound
	rec = at.do("PATCH", "/v1/topics/gone", strings.NewReader(`{"retention_ms":1}`), jsonHeader()...)
	if e := errorOf(t, rec); rec.Code != 404 || e.Code != "topic_not_found" {
		t.Fatalf("unknown topic: %d %+v, want 404 topic_not_found", rec.Code, e)
	}
}
