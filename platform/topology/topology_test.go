package topology

import (
	"slices"
	"testing"
)

func TestStartOrderPutsDependenciesFirst(t *testing.T) {
	var names []string
	for _, s := range StartOrder() {
		names = append(names, s.Name)
	}
	want := []string{"user-service", "auth-service", "blog-service", "api-gateway", "dashboard-ui", "load-balancer"}
	if !slices.Equal(names, want) {
		t.Fatalf("start order %v, want %v", names, want)
	}
}

func TestLocalDefaults(t *testing.T) {
	tests := []struct{ service, v, want string }{
		{"auth-service", "USER_SERVICE_URL", "http://127.0.0.1:8101"},
		{"api-gateway", "USER_SERVICE_URL", "http://127.0.0.1:8001"},
		{"user-service", "REDIS_ADDR", "127.0.0.1:6379"},
		{"load-balancer", "LB_PEERS", ""},
		{"load-balancer", "LB_STATS_TARGETS", "api-gateway=http://127.0.0.1:8080,auth-service=http://127.0.0.1:8002," +
			"user-service=http://127.0.0.1:8001,blog-service=http://127.0.0.1:8003,dashboard-ui=http://127.0.0.1:8090"},
	}
	for _, tt := range tests {
		if got := Get(tt.service).LocalDefault(tt.v); got != tt.want {
			t.Errorf("%s %s: got %q, want %q", tt.service, tt.v, got, tt.want)
		}
	}
}
