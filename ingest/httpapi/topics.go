package httpapi

import (
	"net/http"
	"net/url"

	"github.com/mambamq/mamba/ingest"
)

// Topic endpoints of the HTTP API (docs/api.md, "Topics").

type apiTopic struct {
	Name           string `json:"name"`
	Partitions     int    `json:"partitions"`
	RetentionMS    int64  `json:"retention_ms"`
	RetentionBytes int64  `json:"retention_bytes"`
}

func topicToAPI(t ingest.TopicConfig) apiTopic {
	return apiTopic{Name: t.Name, Partitions: t.Partitions, RetentionMS: t.RetentionMS, RetentionBytes: t.RetentionBytes}
}

// apiTopicUpdate is the body of PATCH /v1/topics/{topic}: absent fields
// stay as they are.
type apiTopicUpdate struct {
	RetentionMS    *int64 `json:"retention_ms"`
	RetentionBytes *int64 `json:"retention_bytes"`
}

type apiTopicList struct {
	Topics []apiTopic `json:"topics"`
}

type apiPartitionStats struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
	StoredBytes    int64 `json:"stored_bytes"`
}

type apiTopicDescription struct {
	apiTopic
	StoredBytes    int64               `json:"stored_bytes"`
	Objects        int64               `json:"objects"`
	LogStartAgeMS  int64               `json:"log_start_age_ms"`
	PartitionStats []apiPartitionStats `json:"partition_stats"`
}

// createTopic passes the topic on as given: the service validates it
// (ingest.ValidateTopicConfig).
func (h *handler) createTopic(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiTopic
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	t, err := h.svc.CreateTopic(r.Context(), ingest.TopicConfig{
		Name: req.Name, Partitions: req.Partitions, RetentionMS: req.RetentionMS, RetentionBytes: req.RetentionBytes,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/topics/"+url.PathEscape(t.Name))
	h.writeJSON(w, http.StatusCreated, topicToAPI(t))
	return nil
}

func (h *handler) listTopics(w http.ResponseWriter, r *http.Request) error {
	topics, err := h.svc.ListTopics(r.Context())
	if err != nil {
		return err
	}
	out := apiTopicList{Topics: make([]apiTopic, 0, len(topics))}
	for _, t := range topics {
		out.Topics = append(out.Topics, topicToAPI(t))
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) describeTopic(w http.ResponseWriter, r *http.Request) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	d, err := h.svc.DescribeTopic(r.Context(), name)
	if err != nil {
		return err
	}
	out := apiTopicDescription{
		apiTopic: topicToAPI(d.TopicConfig), StoredBytes: d.StoredBytes, Objects: d.Objects, LogStartAgeMS: d.LogStartAge.Milliseconds(),
		PartitionStats: make([]apiPartitionStats, 0, len(d.PartitionStats)),
	}
	for _, s := range d.PartitionStats {
		out.PartitionStats = append(out.PartitionStats, apiPartitionStats{
			Partition: s.Partition, LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark, StoredBytes: s.StoredBytes,
		})
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

// updateTopic changes a topic's retention; the service validates the
// change (ingest.ValidateTopicUpdate) and answers the topic as it is
// afterwards, which is answered as describe would.
func (h *handler) updateTopic(w http.ResponseWriter, r *http.Request) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiTopicUpdate
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	if _, err := h.svc.UpdateTopic(r.Context(), name, ingest.TopicUpdate{RetentionMS: req.RetentionMS, RetentionBytes: req.RetentionBytes}); err != nil {
		return err
	}
	return h.describeTopic(w, r)
}

func (h *handler) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	name, err := pathTopic(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteTopic(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
