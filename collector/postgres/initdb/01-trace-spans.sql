-- trace_spans as the project's migration 0011 creates it (no unique constraint, no index on
-- span_id), so that the local database looks like production before `beacon-otel sink migrate`
-- adds the unique span_id index. Run once by the postgres image on an empty data directory.
CREATE TABLE trace_spans (
    id BIGSERIAL PRIMARY KEY,
    trace_id UUID NOT NULL,
    span_id UUID NOT NULL,
    parent_span_id UUID,
    service VARCHAR(50) NOT NULL,
    operation VARCHAR(100) NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ,
    duration_ms INTEGER,
    status VARCHAR(20) NOT NULL,
    job_id VARCHAR(255),
    execution_id BIGINT,
    model_id VARCHAR(100),
    region VARCHAR(50),
    metadata JSONB,
    error_message TEXT,
    error_type VARCHAR(100),
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_trace_spans_trace_id ON trace_spans (trace_id);
CREATE INDEX idx_trace_spans_job_id ON trace_spans (job_id);
CREATE INDEX idx_trace_spans_execution_id ON trace_spans (execution_id);
CREATE INDEX idx_trace_spans_started_at ON trace_spans (started_at);
CREATE INDEX idx_trace_spans_service_operation ON trace_spans (service, operation);
CREATE INDEX idx_trace_spans_created_at ON trace_spans (created_at);
