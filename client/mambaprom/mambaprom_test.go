package mambaprom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/client/mambaprom"
	"github.com/mambamq/mamba/mambatest"
)

// A client with the metrics hook produces and fetches through a real
// node; the registry then holds what it did.
func TestMetricsCountWhatTheClientDid(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := mambaprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := mambatest.Start(t, mambatest.WithTopic("metered", 1), mambatest.WithClientOptions(client.WithHooks(m)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	p, err := srv.Client.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		// One synchronous produce per record: one batch each.
		if _, err := p.Produce(ctx, client.Record{Topic: "metered", Value: fmt.Appendf(nil, "value-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := srv.Client.NewPartitionConsumer("metered", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := pc.Fetch(ctx); err != nil || len(recs) != n {
		t.Fatalf("fetch: %d records, %v", len(recs), err)
	}
	if _, err := srv.Client.DescribeTopic(ctx, "missing"); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("describe missing: %v", err)
	}

	// Values are "value-0".."value-9": 7 bytes each.
	want := fmt.Sprintf(`
# HELP mamba_client_produce_batches_total Produce batches by topic and result (ok or error).
# TYPE mamba_client_produce_batches_total counter
mamba_client_produce_batches_total{result="ok",topic="metered"} %[1]d
# HELP mamba_client_produce_records_total Records in produce batches, by topic and result.
# TYPE mamba_client_produce_records_total counter
mamba_client_produce_records_total{result="ok",topic="metered"} %[1]d
# HELP mamba_client_produce_bytes_total Keys, values and headers in produce batches, by topic and result.
# TYPE mamba_client_produce_bytes_total counter
mamba_client_produce_bytes_total{result="ok",topic="metered"} %[2]d
# HELP mamba_client_fetch_records_total Records fetched, by topic.
# TYPE mamba_client_fetch_records_total counter
mamba_client_fetch_records_total{topic="metered"} %[1]d
# HELP mamba_client_fetch_bytes_total Keys, values and headers fetched, by topic.
# TYPE mamba_client_fetch_bytes_total counter
mamba_client_fetch_bytes_total{topic="metered"} %[2]d
# HELP mamba_client_fetches_total Fetches of one partition, by topic and result (ok or error).
# TYPE mamba_client_fetches_total counter
mamba_client_fetches_total{result="ok",topic="metered"} 1
`, n, 7*n)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"mamba_client_produce_batches_total", "mamba_client_produce_records_total", "mamba_client_produce_bytes_total",
		"mamba_client_fetch_records_total", "mamba_client_fetch_bytes_total", "mamba_client_fetches_total"); err != nil {
		t.Error(err)
	}

	// Requests: the produces, the fetch and the failed describe, each
	// under its route and status; every histogram has its observations.
	gathered, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range gathered {
		if mf.GetName() != "mamba_client_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var l []string
			for _, lp := range mt.GetLabel() {
				l = append(l, lp.GetName()+"="+lp.GetValue())
			}
			got[strings.Join(l, ",")] = mt.GetCounter().GetValue()
		}
	}
	for labels, count := range map[string]float64{
		"method=POST,route=/v1/topics/{topic}/records,status=200":                       n,
		"method=GET,route=/v1/topics/{topic}/partitions/{partition}/records,status=200": 1,
		"method=GET,route=/v1/topics/{topic},status=404":                                1,
	} {
		if got[labels] != count {
			t.Errorf("requests_total{%s} = %v, want %v (all: %v)", labels, got[labels], count, got)
		}
	}
	if c := testutil.CollectAndCount(reg, "mamba_client_request_duration_seconds", "mamba_client_produce_batch_duration_seconds", "mamba_client_fetch_duration_seconds"); c < 3 {
		t.Errorf("%d duration histograms, want at least one per kind", c)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestNewRefusesASecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := mambaprom.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := mambaprom.New(reg); err == nil {
		t.Fatal("a second Metrics registered on the same registry")
	}
}
