package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testnode"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore/miniostore"
)

// startNode runs an ingest node on its own MinIO and Redis and drains it
// when the test ends. A zero FlushInterval is 20ms here.
func startNode(t *testing.T, cfg ingest.Config) *ingest.Node {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	store, err := miniostore.New(miniostore.Config{
		Endpoint: m.Endpoint, Bucket: m.CreateBucket(t, "mamba"), PathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	if cfg.NodeID == "" {
		cfg.NodeID = fmt.Sprintf("node-%d", time.Now().UnixNano())
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	n := testnode.Run(t, cfg, metadata.New(rdb, metadata.Options{}), store, nil)
	return n
}

// readAll reads every partition of topic from n, from its log start to
// its high watermark.
func readAll(t *testing.T, n *ingest.Node, topic string) map[int32][]ingest.FetchedRecord {
	t.Helper()
	desc, err := n.DescribeTopic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]ingest.FetchedRecord{}
	for _, ps := range desc.PartitionStats {
		for off := ps.LogStartOffset; off < ps.HighWatermark; {
			res, err := n.Fetch(t.Context(), ingest.FetchRequest{Topic: topic, Partition: ps.Partition, Offset: off, MaxRecords: 97})
			if err != nil {
				t.Fatalf("fetch %s/%d at %d: %v", topic, ps.Partition, off, err)
			}
			if len(res.Records) == 0 || res.NextOffset <= off {
				t.Fatalf("fetch %s/%d at %d below high watermark %d returned nothing", topic, ps.Partition, off, ps.HighWatermark)
			}
			out[ps.Partition] = append(out[ps.Partition], res.Records...)
			off = res.NextOffset
		}
	}
	return out
}

// TestHeadersRoundTripThroughNode produces JSON headers in both forms to a
// real node and fetches them back as JSON: the list keeps its order and
// repeated keys, the object comes back sorted by name, both as lists.
func TestHeadersRoundTripThroughNode(t *testing.T) {
	n := startNode(t, ingest.Config{})
	if _, err := n.CreateTopic(t.Context(), ingest.TopicConfig{Name: "hdr", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(n, Options{}, nil, nil, nil))
	defer srv.Close()

	body := `{"records":[
		{"value":"list","headers":[{"key":"trace","value":"1"},{"key":"hop","value":"a"},{"key":"trace","value":"2"},{"key":"hop","value":"b"}]},
		{"value":"object","headers":{"z":"last","a":"first"}}
	]}`
	resp, err := srv.Client().Post(srv.URL+"/v1/topics/hdr/records", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("produce: status %d", resp.StatusCode)
	}

	resp, err = srv.Client().Get(srv.URL + "/v1/topics/hdr/partitions/0/records?offset=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Records []struct {
			Value   string      `json:"value"`
			Headers []apiHeader `json:"headers"`
		} `json:"records"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := [][]apiHeader{
		{{Key: "trace", Value: "1"}, {Key: "hop", Value: "a"}, {Key: "trace", Value: "2"}, {Key: "hop", Value: "b"}},
		{{Key: "a", Value: "first"}, {Key: "z", Value: "last"}},
	}
	if len(got.Records) != len(want) {
		t.Fatalf("fetched %d records, want %d", len(got.Records), len(want))
	}
	for i, r := range got.Records {
		if !slices.Equal(r.Headers, want[i]) {
			t.Errorf("record %d (%s) headers %v, want %v", i, r.Value, r.Headers, want[i])
		}
	}
}
