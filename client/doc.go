/*
Package client is the Go SDK of Mamba: admin calls, a batching producer, a
partition consumer and a group consumer, over the HTTP API of docs/api.md.
It imports no server package and no Redis or S3 library, only the
standard library and the binary content type (internal/wire) and key hash
(internal/wire) it shares with the server.

A Client holds the cluster's URL, the HTTP client and the retry policy;
producers and consumers are made from it:

	c, err := client.New("http://127.0.0.1:8080")
	...
	_, err = c.CreateTopic(ctx, "orders", 8, client.WithRetention(7*24*time.Hour))

	p, err := c.NewProducer()
	...
	defer p.Close(ctx)
	res, err := p.Produce(ctx, client.Record{Topic: "orders", Key: []byte("customer-7"), Value: body})
	f := p.ProduceAsync(client.Record{Topic: "orders", Value: body})
	...
	if err := f.Err(); err != nil { ... }

	g, err := c.NewGroupConsumer("billing", []string{"orders"}, client.WithAutoCommit(time.Second))
	...
	defer g.Close(ctx)
	for rec, err := range g.Records(ctx) {
		if err != nil { ... }
		handle(rec)
	}

# Errors

Every error answer of the API is an *APIError; errors.Is matches it with
the sentinel of its code (ErrTopicNotFound for topic_not_found, and so
on), and errors.As gives its status, code, message and Retry-After.
IsRetryable tells the errors worth retrying (408, 429, 502, 503, 504 and
network failures); the producer and the consumers' iterators retry them
themselves, logging each retry at warn level (WithLogger), for a bounded
time: WithConnectTimeout (5 s) while the client has never had an answer
from the server, then WithRetryTimeout (1 min) for the iterators and
WithDeliveryTimeout for the producer. A server that cannot be reached
gives an error matching ErrUnreachable, an *UnreachableError whose
message is one line: "cannot reach http://127.0.0.1:8080: connection
refused".

# Producer

Produce waits for the durable acknowledgement; ProduceAsync returns a
Future; TryProduce fails fast with ErrBufferFull. Records are batched per
topic, sent in the binary content type, and retried with the same
Idempotency-Key until the delivery timeout, so that a retry never
duplicates them. A partition has at most one request in flight, so records
of a partition are stored in the order they were produced. Flush and Close
drain the producer; every future is done in the end, with a result or an
error. See Producer.

# Consumers

A PartitionConsumer reads one partition from an offset it keeps. A
GroupConsumer joins a consumer group, which assigns it partitions and
stores its committed offsets. Both read with Fetch or with a Records
iterator that long-polls at the end of the log. docs/sdk.md is the guide.

# Metrics, tracing and tests

WithHooks adds observers of every HTTP attempt, produce batch and fetch
(RequestHook, ProduceBatchHook, FetchHook); package client/mambaprom is
one that keeps Prometheus metrics. Package mambatest starts an in-process
Mamba for the tests of code that uses this package:
srv := mambatest.Start(t).
*/
package client
