package client

import "testing"

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/topics":                                 "/v1/topics",
		"/v1/topics/orders":                          "/v1/topics/{topic}",
		"/v1/topics/orders/records":                  "/v1/topics/{topic}/records",
		"/v1/topics/orders/partitions/3/records":     "/v1/topics/{topic}/partitions/{partition}/records",
		"/v1/topics/partitions/partitions/0/records": "/v1/topics/{topic}/partitions/{partition}/records",
		"/v1/groups/billing/members":                 "/v1/groups/{group}/members",
		"/v1/groups/billing/members/m-1/heartbeat":   "/v1/groups/{group}/members/{member}/heartbeat",
		"/v1/groups/topics/offsets":                  "/v1/groups/{group}/offsets",
		"/prefix/v1/groups":                          "/prefix/v1/groups",
	} {
		if got := route(path); got != want {
			t.Errorf("route(%q) = %q, want %q", path, got, want)
		}
	}
}
