package httpcheckreceiver

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/zap"
)

// Metric and attribute names, the same as the contrib httpcheck receiver's.
const (
	metricStatus   = "httpcheck.status"
	metricDuration = "httpcheck.duration"
	metricError    = "httpcheck.error"

	attrURL          = "http.url"
	attrStatusCode   = "http.status_code"
	attrMethod       = "http.method"
	attrStatusClass  = "http.status_class"
	attrErrorMessage = "error.message"
)

// statusClasses are the classes httpcheck.status has one data point for, per URL and round.
var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

type httpcheckReceiver struct {
	cfg      *Config
	checks   []check
	settings receiver.Settings
	next     consumer.Metrics
	client   *http.Client

	// startTime is the start timestamp of every data point: the series are cumulative from it.
	startTime pcommon.Timestamp

	cancel context.CancelFunc
	done   chan struct{}
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) *httpcheckReceiver {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &httpcheckReceiver{
		cfg:      cfg,
		checks:   cfg.checks(),
		settings: set,
		next:     next,
		client:   &http.Client{Transport: transport},
	}
}

// Start runs the collection loop in the background until Shutdown.
func (r *httpcheckReceiver) Start(_ context.Context, _ component.Host) error {
	r.startTime = pcommon.NewTimestampFromTime(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	go r.loop(ctx)
	return nil
}

// Shutdown stops the loop, aborting requests in flight, and waits until it has returned.
func (r *httpcheckReceiver) Shutdown(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.client.CloseIdleConnections()
	return nil
}

func (r *httpcheckReceiver) loop(ctx context.Context) {
	defer close(r.done)
	if r.cfg.InitialDelay > 0 {
		select {
		case <-time.After(r.cfg.InitialDelay):
		case <-ctx.Done():
			return
		}
	}
	ticker := time.NewTicker(r.cfg.CollectionInterval)
	defer ticker.Stop()
	for {
		r.collect(ctx)
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// result is the outcome of one check.
type result struct {
	check    check
	at       pcommon.Timestamp
	duration time.Duration
	status   int   // 0 when err is set
	err      error // no response at all
}

// collect runs every check concurrently and sends their metrics on.
func (r *httpcheckReceiver) collect(ctx context.Context) {
	round := ctx
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		round, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	results := make([]result, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() { results[i] = r.probe(round, c) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: the failures are ours, not the targets'
	}
	if err := r.next.ConsumeMetrics(ctx, r.metrics(results)); err != nil {
		r.settings.Logger.Warn("httpcheck: sending metrics failed", zap.Error(err))
	}
}

// probe makes one request and reads the whole response, within the check's timeout.
func (r *httpcheckReceiver) probe(ctx context.Context, c check) result {
	res := result{check: c, at: pcommon.NewTimestampFromTime(time.Now())}
	start := time.Now()
	res.status, res.err = r.request(ctx, c)
	res.duration = time.Since(start)
	if res.err != nil {
		r.settings.Logger.Debug("httpcheck: request failed", zap.String("url", c.url), zap.Error(res.err))
	}
	return res
}

// request returns the response's status code, or the error that left it without one.
func (r *httpcheckReceiver) request(ctx context.Context, c check) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return 0, err
	}
	for name, value := range c.headers.Iter {
		if strings.EqualFold(name, "Host") {
			req.Host = string(value)
		} else {
			req.Header.Set(name, string(value))
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		// The status line arrived, so the check has its status; a cut body is only worth a note.
		r.settings.Logger.Debug("httpcheck: reading response failed", zap.String("url", c.url), zap.Error(err))
	}
	return resp.StatusCode, nil
}

// metrics turns one round's results into httpcheck.duration, httpcheck.error (only when a
// check failed) and httpcheck.status. The resource is empty.
func (r *httpcheckReceiver) metrics(results []result) pmetric.Metrics {
	md := pmetric.NewMetrics()
	scope := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	scope.Scope().SetName(scopeName)
	scope.Scope().SetVersion(r.settings.BuildInfo.Version)
	list := scope.Metrics()

	duration := list.AppendEmpty()
	duration.SetName(metricDuration)
	duration.SetDescription("Time the HTTP check took, reading the response included.")
	duration.SetUnit("ms")
	durations := duration.SetEmptyGauge().DataPoints()
	for _, res := range results {
		dp := r.point(durations.AppendEmpty(), res, res.duration.Milliseconds())
		dp.Attributes().PutStr(attrURL, res.check.url)
	}

	if slices.ContainsFunc(results, func(res result) bool { return res.err != nil }) {
		failed := list.AppendEmpty()
		failed.SetName(metricError)
		failed.SetDescription("1 for each check that got no HTTP response, with the error.")
		failed.SetUnit("{error}")
		errorPoints := cumulativeGauge(failed)
		for _, res := range results {
			if res.err != nil {
				dp := r.point(errorPoints.AppendEmpty(), res, 1)
				dp.Attributes().PutStr(attrURL, res.check.url)
				dp.Attributes().PutStr(attrErrorMessage, res.err.Error())
			}
		}
	}

	status := list.AppendEmpty()
	status.SetName(metricStatus)
	status.SetDescription("1 for the status class of the response, 0 for the other classes (all 0 when the check failed).")
	status.SetUnit("1")
	statusPoints := cumulativeGauge(status)
	for _, res := range results {
		for i, class := range statusClasses {
			matched := res.status/100 == i+1
			var value int64
			if matched {
				value = 1
			}
			dp := r.point(statusPoints.AppendEmpty(), res, value)
			attrs := dp.Attributes()
			attrs.PutStr(attrURL, res.check.url)
			if matched {
				attrs.PutInt(attrStatusCode, int64(res.status))
			}
			attrs.PutStr(attrMethod, res.check.method)
			attrs.PutStr(attrStatusClass, class)
		}
	}
	return md
}

// cumulativeGauge makes m a non-monotonic cumulative sum, the shape contrib gives its
// "current value" metrics, and returns its data points.
func cumulativeGauge(m pmetric.Metric) pmetric.NumberDataPointSlice {
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(false)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return sum.DataPoints()
}

func (r *httpcheckReceiver) point(dp pmetric.NumberDataPoint, res result, value int64) pmetric.NumberDataPoint {
	dp.SetStartTimestamp(r.startTime)
	dp.SetTimestamp(res.at)
	dp.SetIntValue(value)
	return dp
}
