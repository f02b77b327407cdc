package httpcheckreceiver

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

// startReceiver runs a receiver through its factory, as the collector does, and stops it when
// the test ends.
func startReceiver(t *testing.T, cfg *Config) *consumertest.MetricsSink {
	t.Helper()
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(componentType), cfg, sink)
	if err != nil {
		t.Fatalf("CreateMetrics: %v", err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := rcv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return sink
}

// oneRound configures a receiver that checks at once and then not again during the test.
func oneRound(targets ...TargetConfig) *Config {
	cfg := createDefaultConfig()
	cfg.CollectionInterval = time.Hour
	cfg.InitialDelay = 0
	cfg.Targets = targets
	return cfg
}

func waitForMetrics(t *testing.T, sink *consumertest.MetricsSink, rounds int) []pmetric.Metrics {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.AllMetrics()) < rounds {
		if time.Now().After(deadline) {
			t.Fatalf("got %d rounds of metrics, want %d", len(sink.AllMetrics()), rounds)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return sink.AllMetrics()
}

func findMetric(t *testing.T, md pmetric.Metrics, name string) (pmetric.Metric, bool) {
	t.Helper()
	if md.ResourceMetrics().Len() != 1 || md.ResourceMetrics().At(0).ScopeMetrics().Len() != 1 {
		t.Fatalf("want one resource with one scope, got %d resources", md.ResourceMetrics().Len())
	}
	rm := md.ResourceMetrics().At(0)
	if rm.Resource().Attributes().Len() != 0 {
		t.Errorf("resource attributes = %v, want none", rm.Resource().Attributes().AsRaw())
	}
	sm := rm.ScopeMetrics().At(0)
	if sm.Scope().Name() != scopeName {
		t.Errorf("scope name = %q, want %q", sm.Scope().Name(), scopeName)
	}
	for i := 0; i < sm.Metrics().Len(); i++ {
		if m := sm.Metrics().At(i); m.Name() == name {
			return m, true
		}
	}
	return pmetric.Metric{}, false
}

func mustMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	m, ok := findMetric(t, md, name)
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	return m
}

// checkSumShape asserts that m is a non-monotonic cumulative sum of ints with the given unit.
func checkSumShape(t *testing.T, m pmetric.Metric, unit string) {
	t.Helper()
	if m.Type() != pmetric.MetricTypeSum {
		t.Fatalf("%s type = %s, want Sum", m.Name(), m.Type())
	}
	if m.Sum().IsMonotonic() || m.Sum().AggregationTemporality() != pmetric.AggregationTemporalityCumulative {
		t.Errorf("%s: want a non-monotonic cumulative sum", m.Name())
	}
	if m.Unit() != unit {
		t.Errorf("%s unit = %q, want %q", m.Name(), m.Unit(), unit)
	}
}

// statusByClass returns the httpcheck.status points of url, by http.status_class.
func statusByClass(t *testing.T, md pmetric.Metrics, url string) map[string]pmetric.NumberDataPoint {
	t.Helper()
	m := mustMetric(t, md, metricStatus)
	checkSumShape(t, m, "1")
	out := map[string]pmetric.NumberDataPoint{}
	dps := m.Sum().DataPoints()
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		if u, _ := dp.Attributes().Get(attrURL); u.Str() != url {
			continue
		}
		class, _ := dp.Attributes().Get(attrStatusClass)
		if _, dup := out[class.Str()]; dup {
			t.Fatalf("two status points for %s class %s", url, class.Str())
		}
		out[class.Str()] = dp
	}
	if len(out) != 5 {
		t.Fatalf("status points for %s: %d classes, want 5", url, len(out))
	}
	return out
}

// checkStatus asserts one value-1 point carrying the status code for wantClass (none when
// wantClass is "") and value-0 points without a status code for the other classes.
func checkStatus(t *testing.T, md pmetric.Metrics, url, method, wantClass string, wantCode int64) {
	t.Helper()
	for class, dp := range statusByClass(t, md, url) {
		attrs := dp.Attributes()
		if m, _ := attrs.Get(attrMethod); m.Str() != method {
			t.Errorf("%s %s: http.method = %q, want %q", url, class, m.Str(), method)
		}
		code, hasCode := attrs.Get(attrStatusCode)
		if class == wantClass {
			if dp.IntValue() != 1 || !hasCode || code.Int() != wantCode {
				t.Errorf("%s %s: value %d, status code %v; want 1 and %d", url, class, dp.IntValue(), attrs.AsRaw()[attrStatusCode], wantCode)
			}
			if code.Type() != pcommon.ValueTypeInt {
				t.Errorf("http.status_code is a %s, want Int", code.Type())
			}
		} else if dp.IntValue() != 0 || hasCode {
			t.Errorf("%s %s: value %d, attributes %v; want 0 without http.status_code", url, class, dp.IntValue(), attrs.AsRaw())
		}
	}
}

func checkDuration(t *testing.T, md pmetric.Metrics, url string) {
	t.Helper()
	m := mustMetric(t, md, metricDuration)
	if m.Type() != pmetric.MetricTypeGauge || m.Unit() != "ms" {
		t.Fatalf("httpcheck.duration: type %s unit %q, want Gauge in ms", m.Type(), m.Unit())
	}
	for i := 0; i < m.Gauge().DataPoints().Len(); i++ {
		dp := m.Gauge().DataPoints().At(i)
		if u, _ := dp.Attributes().Get(attrURL); u.Str() == url {
			if dp.Attributes().Len() != 1 || dp.IntValue() < 0 {
				t.Errorf("duration point %v = %d", dp.Attributes().AsRaw(), dp.IntValue())
			}
			return
		}
	}
	t.Errorf("no httpcheck.duration point for %s", url)
}

func respond(code int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte("body"))
	}))
}

func TestHealthyTarget(t *testing.T) {
	srv := respond(http.StatusOK)
	defer srv.Close()

	md := waitForMetrics(t, startReceiver(t, oneRound(TargetConfig{Endpoint: srv.URL})), 1)[0]
	checkStatus(t, md, srv.URL, "GET", "2xx", 200)
	checkDuration(t, md, srv.URL)
	if _, ok := findMetric(t, md, metricError); ok {
		t.Error("httpcheck.error present for a healthy target")
	}
}

func TestUnavailableTarget(t *testing.T) {
	srv := respond(http.StatusServiceUnavailable)
	defer srv.Close()

	md := waitForMetrics(t, startReceiver(t, oneRound(TargetConfig{Method: "GET", Endpoint: srv.URL})), 1)[0]
	checkStatus(t, md, srv.URL, "GET", "5xx", 503)
	checkDuration(t, md, srv.URL)
	if _, ok := findMetric(t, md, metricError); ok {
		t.Error("httpcheck.error present although the target answered")
	}
}

// closedURL is a URL on a loopback port that nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + "/health"
}

func checkError(t *testing.T, md pmetric.Metrics, url, wantInMessage string) {
	t.Helper()
	m := mustMetric(t, md, metricError)
	checkSumShape(t, m, "{error}")
	dps := m.Sum().DataPoints()
	if dps.Len() != 1 {
		t.Fatalf("httpcheck.error has %d points, want 1", dps.Len())
	}
	attrs := dps.At(0).Attributes()
	u, _ := attrs.Get(attrURL)
	msg, _ := attrs.Get(attrErrorMessage)
	if dps.At(0).IntValue() != 1 || u.Str() != url || attrs.Len() != 2 {
		t.Errorf("error point: value %d attributes %v", dps.At(0).IntValue(), attrs.AsRaw())
	}
	if !strings.Contains(msg.Str(), wantInMessage) {
		t.Errorf("error.message = %q, want it to contain %q", msg.Str(), wantInMessage)
	}
}

func TestClosedPort(t *testing.T) {
	url := closedURL(t)
	md := waitForMetrics(t, startReceiver(t, oneRound(TargetConfig{Endpoint: url})), 1)[0]
	checkStatus(t, md, url, "GET", "", 0)
	checkDuration(t, md, url)
	checkError(t, md, url, "connection refused")
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)

	begun := time.Now()
	md := waitForMetrics(t, startReceiver(t, oneRound(TargetConfig{Endpoint: srv.URL, Timeout: 100 * time.Millisecond})), 1)[0]
	if took := time.Since(begun); took > 5*time.Second {
		t.Errorf("a 100ms timeout took %s", took)
	}
	checkStatus(t, md, srv.URL, "GET", "", 0)
	checkError(t, md, srv.URL, "deadline exceeded")
}

func TestRoundTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)

	cfg := oneRound(TargetConfig{Endpoint: srv.URL})
	cfg.Timeout = 100 * time.Millisecond
	md := waitForMetrics(t, startReceiver(t, cfg), 1)[0]
	checkError(t, md, srv.URL, "deadline exceeded")
}

// TestChecksRunConcurrently has every handler wait until all requests have arrived, which
// happens only when the checks run at the same time.
func TestChecksRunConcurrently(t *testing.T) {
	const n = 3
	var arrived sync.WaitGroup
	arrived.Add(n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		arrived.Wait()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	cfg := oneRound(
		TargetConfig{Endpoint: srv.URL + "/a", Endpoints: []string{srv.URL + "/b"}, Timeout: 5 * time.Second},
		TargetConfig{Method: "HEAD", Endpoints: []string{srv.URL + "/c"}, Timeout: 5 * time.Second},
	)
	md := waitForMetrics(t, startReceiver(t, cfg), 1)[0]
	checkStatus(t, md, srv.URL+"/a", "GET", "2xx", 204)
	checkStatus(t, md, srv.URL+"/b", "GET", "2xx", 204)
	checkStatus(t, md, srv.URL+"/c", "HEAD", "2xx", 204)
	if got := mustMetric(t, md, metricStatus).Sum().DataPoints().Len(); got != 3*5 {
		t.Errorf("%d status points, want 15", got)
	}
}

func TestMixedTargets(t *testing.T) {
	ok := respond(http.StatusOK)
	defer ok.Close()
	down := closedURL(t)

	md := waitForMetrics(t, startReceiver(t, oneRound(TargetConfig{Endpoints: []string{ok.URL, down}})), 1)[0]
	checkStatus(t, md, ok.URL, "GET", "2xx", 200)
	checkStatus(t, md, down, "GET", "", 0)
	checkError(t, md, down, "connection refused")
}

func TestMethodHeadersAndBody(t *testing.T) {
	type seen struct{ method, auth, host, body string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Authorization"), r.Host, string(body)}
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()

	target := TargetConfig{Method: "POST", Endpoint: srv.URL, Body: `{"ping":1}`}
	target.Headers.Set("Authorization", "Bearer x")
	target.Headers.Set("Host", "example.test")
	md := waitForMetrics(t, startReceiver(t, oneRound(target)), 1)[0]

	s := <-got
	if s != (seen{"POST", "Bearer x", "example.test", `{"ping":1}`}) {
		t.Errorf("server saw %+v", s)
	}
	checkStatus(t, md, srv.URL, "POST", "3xx", 302)
}

func TestIntervalAndShutdown(t *testing.T) {
	srv := respond(http.StatusOK)
	defer srv.Close()

	cfg := createDefaultConfig()
	cfg.CollectionInterval = 20 * time.Millisecond
	cfg.InitialDelay = 10 * time.Millisecond
	cfg.Targets = []TargetConfig{{Endpoint: srv.URL}}
	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(componentType), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	rounds := waitForMetrics(t, sink, 3)
	first := mustMetric(t, rounds[0], metricStatus).Sum().DataPoints().At(0)
	last := mustMetric(t, rounds[2], metricStatus).Sum().DataPoints().At(0)
	if first.StartTimestamp() == 0 || first.StartTimestamp() != last.StartTimestamp() || last.Timestamp() <= first.Timestamp() {
		t.Errorf("timestamps: first %d..%d, third %d..%d", first.StartTimestamp(), first.Timestamp(), last.StartTimestamp(), last.Timestamp())
	}

	if err := rcv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	after := len(sink.AllMetrics())
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.AllMetrics()); n != after {
		t.Errorf("%d rounds after Shutdown returned", n-after)
	}
}

func TestShutdownAbortsSlowRequest(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer srv.Close()
	defer close(release)

	sink := new(consumertest.MetricsSink)
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(componentType), oneRound(TargetConfig{Endpoint: srv.URL}), sink)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	<-arrived
	begun := time.Now()
	if err := rcv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(begun); took > 5*time.Second {
		t.Errorf("Shutdown waited %s for a stuck request", took)
	}
	if n := len(sink.AllMetrics()); n != 0 {
		t.Errorf("%d rounds sent for a round cut by Shutdown, want 0", n)
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	rcv, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(componentType), oneRound(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
