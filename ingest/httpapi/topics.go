package httpapi

import (
	"net/http"
	"net/url"

	"github.com/mambamq/mamba/ingest"
)

// Topic endpoints of the HTTP API (docs/api.md, "Topics").

type apiTopic struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	RetentionMS int64  `json:"retention_ms"`
}

func topicToAPI(t ingest.TopicConfig) apiTopic {
	return apiTopic{Name: t.Name, Partitions: t.Partitions, RetentionMS: t.RetentionMS}
}

type apiTopicList struct {
	Topics []apiTopic `json:"topics"`
}

type apiPartitionStats struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type apiTopicDescription struct {
	apiTopic
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
	t, err := h.svc.CreateTopic(r.Context(), ingest.TopicConfig{Name: req.Name, Partitions: req.Partitions, RetentionMS: req.RetentionMS})
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
	out := apiTopicDescription{apiTopic: topicToAPI(d.TopicConfig), PartitionStats: make([]apiPartitionStats, 0, len(d.PartitionStats))}
	for _, s := range d.PartitionStats {
		out.PartitionStats = append(out.PartitionStats, apiPartitionStats{Partition: s.Partition, LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark})
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
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
