package httpapi

import (
	"bytes"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// Consumer group endpoints of the HTTP API (docs/api.md, "Consumer
// groups"). Group names, topics, session timeouts and offsets are the
// service's to validate (ingest.ValidateJoinGroup and friends).

type apiJoinRequest struct {
	Topics           []string `json:"topics"`
	SessionTimeoutMS int64    `json:"session_timeout_ms"`
	OffsetReset      string   `json:"offset_reset"`
}

type apiAssignment struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Lease is in the member's own join and heartbeat answers only: a
	// lease authorizes offset commits, so describe never shows it.
	Lease           int64 `json:"lease,omitempty"`
	CommittedOffset int64 `json:"committed_offset"`
	Revoking        bool  `json:"revoking"`
}

type apiJoinResponse struct {
	MemberID string `json:"member_id"`
	// SessionKey is in the join answer only: the member presents it
	// (wire.HeaderSessionKey) with every heartbeat, leave and commit.
	SessionKey  string          `json:"session_key"`
	Assignments []apiAssignment `json:"assignments"`
	Waiting     bool            `json:"waiting"`
	OffsetReset string          `json:"offset_reset"`
}

type apiAssignments struct {
	Assignments []apiAssignment `json:"assignments"`
	Waiting     bool            `json:"waiting"`
}

type apiRelease struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lease     int64  `json:"lease"`
}

type apiHeartbeatRequest struct {
	Release []apiRelease `json:"release"`
}

type apiOffsetCommit struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Lease     int64  `json:"lease"`
}

type apiCommitRequest struct {
	MemberID string            `json:"member_id"`
	Offsets  []apiOffsetCommit `json:"offsets"`
}

type apiMember struct {
	MemberID         string          `json:"member_id"`
	Topics           []string        `json:"topics"`
	SessionTimeoutMS int64           `json:"session_timeout_ms"`
	ExpiresMS        int64           `json:"expires_ms"`
	Assignments      []apiAssignment `json:"assignments"`
}

type apiGroupOffset struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	LogStartOffset  int64  `json:"log_start_offset"`
	HighWatermark   int64  `json:"high_watermark"`
	Lag             int64  `json:"lag"`
	BelowLogStart   bool   `json:"below_log_start"`
}

type apiGroup struct {
	Group       string           `json:"group"`
	OffsetReset string           `json:"offset_reset"`
	Members     []apiMember      `json:"members"`
	Offsets     []apiGroupOffset `json:"offsets"`
}

type apiGroupList struct {
	Groups []string `json:"groups"`
}

func assignmentsToAPI(as []metadata.Assignment) []apiAssignment {
	out := make([]apiAssignment, 0, len(as))
	for _, a := range as {
		out = append(out, apiAssignment{Topic: a.Topic, Partition: a.Partition, Lease: a.Lease, CommittedOffset: a.CommittedOffset, Revoking: a.Revoking})
	}
	return out
}

func (h *handler) joinGroup(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiJoinRequest
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	// A member reads every topic it joins with: its token needs
	// consume on each, besides group on the group (routeAccess).
	if err := authorizeTopics(r.Context(), metadata.ScopeConsume, req.Topics); err != nil {
		return err
	}
	j, err := h.svc.Join(r.Context(), ingest.JoinGroupRequest{Group: group, Topics: req.Topics,
		Session: millis(req.SessionTimeoutMS), OffsetReset: req.OffsetReset})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/groups/"+url.PathEscape(group)+"/members/"+url.PathEscape(j.Member))
	h.writeJSON(w, http.StatusCreated, apiJoinResponse{MemberID: j.Member, SessionKey: j.SessionKey, Assignments: assignmentsToAPI(j.Assignments), Waiting: j.Waiting, OffsetReset: j.OffsetReset})
	return nil
}

// millis converts milliseconds to a Duration, saturating instead of
// wrapping around, so that the service sees an absurd value as absurd.
func millis(ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	return time.Duration(min(max(ms, -limit), limit)) * time.Millisecond
}

// heartbeat keeps a member alive; its body, optional, names partitions
// the member releases.
func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiHeartbeatRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeJSONBody(body, &req); err != nil {
			return err
		}
	}
	var release []metadata.TopicPartitionLease
	for _, rl := range req.Release {
		release = append(release, metadata.TopicPartitionLease{Topic: rl.Topic, Partition: rl.Partition, Lease: rl.Lease})
	}
	key, err := sessionKey(r)
	if err != nil {
		return err
	}
	synced, err := h.svc.Heartbeat(r.Context(), group, r.PathValue("member"), key, release)
	if err != nil {
		return err
	}
	h.writeJSON(w, http.StatusOK, apiAssignments{Assignments: assignmentsToAPI(synced.Assignments), Waiting: synced.Waiting})
	return nil
}

func (h *handler) leaveGroup(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	key, err := sessionKey(r)
	if err != nil {
		return err
	}
	if err := h.svc.LeaveGroup(r.Context(), group, r.PathValue("member"), key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) commitOffsets(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiCommitRequest
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	offsets := make([]metadata.OffsetCommit, len(req.Offsets))
	for i, o := range req.Offsets {
		offsets[i] = metadata.OffsetCommit{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Lease: o.Lease}
	}
	key, err := sessionKey(r)
	if err != nil {
		return err
	}
	if err := h.svc.CommitOffsets(r.Context(), group, req.MemberID, key, offsets); err != nil {
		return err
	}
	h.writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// sessionKey reads the member's session key from its header; the service
// checks it (a missing one is a 400, a wrong one 403 session_invalid).
func sessionKey(r *http.Request) (string, error) {
	keys := r.Header.Values(wire.HeaderSessionKey)
	if len(keys) > 1 {
		return "", invalidf("%s: want one header, not %d", wire.HeaderSessionKey, len(keys))
	}
	if len(keys) == 0 {
		return "", nil
	}
	return keys[0], nil
}

func (h *handler) describeGroup(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	d, err := h.svc.DescribeGroup(r.Context(), group)
	if err != nil {
		return err
	}
	out := apiGroup{Group: d.Group, OffsetReset: d.OffsetReset, Members: make([]apiMember, 0, len(d.Members)), Offsets: make([]apiGroupOffset, 0, len(d.Offsets))}
	for _, m := range d.Members {
		out.Members = append(out.Members, apiMember{MemberID: m.ID, Topics: m.Topics, SessionTimeoutMS: m.SessionTimeout.Milliseconds(),
			ExpiresMS: m.Expires.UnixMilli(), Assignments: assignmentsToAPI(m.Assignments)})
	}
	for _, m := range out.Members {
		for i := range m.Assignments {
			m.Assignments[i].Lease = 0 // the member's own answers carry it
		}
	}
	for _, o := range d.Offsets {
		out.Offsets = append(out.Offsets, apiGroupOffset{Topic: o.Topic, Partition: o.Partition, CommittedOffset: o.Committed,
			LogStartOffset: o.LogStartOffset, HighWatermark: o.HighWatermark, Lag: o.Lag, BelowLogStart: o.BelowLogStart})
	}
	h.writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteGroup deletes a group with no live member: 204, 409
// group_not_empty, or 404 group_not_found.
func (h *handler) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteGroup(r.Context(), r.PathValue("group")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) listGroups(w http.ResponseWriter, r *http.Request) error {
	groups, err := h.svc.ListGroups(r.Context())
	if err != nil {
		return err
	}
	h.writeJSON(w, http.StatusOK, apiGroupList{Groups: append([]string{}, groups...)})
	return nil
}
