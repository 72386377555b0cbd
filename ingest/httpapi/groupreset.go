package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/mambamq/mamba/ingest"
)

// POST /v1/groups/{group}/offsets/reset (docs/api.md, "Reset offsets").

type apiResetRequest struct {
	Topic       string           `json:"topic"`
	To          string           `json:"to"`
	TimestampMS *int64           `json:"timestamp_ms"`
	Offsets     map[string]int64 `json:"offsets"`
	Partitions  []int32          `json:"partitions"`
	Force       bool             `json:"force"`
	DryRun      bool             `json:"dry_run"`
}

type apiPartitionReset struct {
	Partition      int32 `json:"partition"`
	CurrentOffset  int64 `json:"current_offset"`
	NewOffset      int64 `json:"new_offset"`
	Clamped        bool  `json:"clamped"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

type apiResetPlan struct {
	Group       string              `json:"group"`
	Topic       string              `json:"topic"`
	DryRun      bool                `json:"dry_run"`
	LiveMembers int                 `json:"live_members"`
	Partitions  []apiPartitionReset `json:"partitions"`
}

func (h *handler) resetOffsets(w http.ResponseWriter, r *http.Request) error {
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var in apiResetRequest
	if err := decodeJSONBody(body, &in); err != nil {
		return err
	}
	req := ingest.ResetOffsetsRequest{Group: r.PathValue("group"), Topic: in.Topic, To: in.To,
		Partitions: in.Partitions, Force: in.Force, DryRun: in.DryRun}
	if in.TimestampMS != nil {
		if *in.TimestampMS < 0 {
			return invalidf("timestamp_ms: %d is negative", *in.TimestampMS)
		}
		req.Timestamp = time.UnixMilli(*in.TimestampMS)
	}
	if in.Offsets != nil {
		req.Offsets = make(map[int32]int64, len(in.Offsets))
		for k, off := range in.Offsets {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || strconv.FormatInt(p, 10) != k {
				return invalidf("offsets: key %q is not a partition number written plainly (\"0\", \"12\")", shorten(k))
			}
			req.Offsets[int32(p)] = off
		}
	}
	plan, err := h.svc.ResetGroupOffsets(r.Context(), req)
	if err != nil {
		return err
	}
	out := apiResetPlan{Group: plan.Group, Topic: plan.Topic, DryRun: plan.DryRun, LiveMembers: plan.LiveMembers,
		Partitions: make([]apiPartitionReset, 0, len(plan.Partitions))}
	for _, p := range plan.Partitions {
		out.Partitions = append(out.Partitions, apiPartitionReset{Partition: p.Partition, CurrentOffset: p.Current, NewOffset: p.New,
			Clamped: p.Clamped, LogStartOffset: p.LogStartOffset, HighWatermark: p.HighWatermark})
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}
