package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mambamq/mamba/ingest"
)

// Health and metrics endpoints: /healthz (the process answers), /readyz
// (Redis and the bucket are reachable) and /metrics.

type apiStatus struct {
	Status string `json:"status"`
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) error {
	h.writeJSON(w, http.StatusOK, apiStatus{Status: "ok"})
	return nil
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Ready(r.Context()); err != nil {
		if !errors.Is(err, ingest.ErrUnavailable) {
			err = fmt.Errorf("%w: %v", ingest.ErrUnavailable, err)
		}
		return err
	}
	h.writeJSON(w, http.StatusOK, apiStatus{Status: "ok"})
	return nil
}

func (h *handler) metricsPage(w http.ResponseWriter, r *http.Request) error {
	if h.promHandler == nil {
		return fmt.Errorf("%w: this server exposes no metrics", errRouteNotFound)
	}
	h.promHandler.ServeHTTP(w, r)
	return nil
}
