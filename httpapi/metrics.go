package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched is the route label of requests no route of the table
// matched (404, and 405 for a known path with another method): one value
// for them all, so that scanning for paths cannot grow the series without
// bound.
const routeUnmatched = "unmatched"

// httpMetrics are the request metrics of a Server (WithMetrics).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// WithMetrics makes the server count its requests with reg: the counter
// deploydb_http_requests_total{route,code} and the histogram
// deploydb_http_request_duration_seconds{route}, where route is the
// route's pattern ("GET /api/deployments/{id}"), never the path asked
// for, and "unmatched" when no route matched. Metrics already registered
// with reg by another Server are shared. It panics if reg refuses them
// for another reason, as MustRegister does. Call it before the server
// serves its first request.
func (s *Server) WithMetrics(reg prometheus.Registerer) *Server {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deploydb_http_requests_total",
			Help: "HTTP requests answered by the API, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "deploydb_http_request_duration_seconds",
			Help:    "Time the API took to answer a request, by route pattern (event streams last as long as their client stays).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	s.metrics = m
	return s
}

// observe counts one request answered with status after d.
func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// routeOf returns the route label of a request refused before it reached
// the mux (a cross-origin write): the pattern it would have matched.
func (s *Server) routeOf(r *http.Request) string {
	if _, pattern := s.mux.Handler(r); pattern != "" && pattern != "/" {
		return pattern
	}
	return routeUnmatched
}

// register registers c with reg, or returns the collector registered
// already under its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("httpapi: register metrics: %v", err))
}
