-- board.agency_scorecard (GV-4): each agency's figures from board.plan_metrics, each with its n.
-- Agencies with at least 5 in-scope datasets are ranked by their MD-4 mean metadata score.
INSERT INTO board.agency_scorecard
WITH agency_metrics AS (
    SELECT
        agency,
        max(value) FILTER (WHERE metric = 'datasets_in_scope')::INTEGER AS datasets,
        max(value) FILTER (WHERE metric = 'pct_missing_metadata') AS md1_pct_missing_metadata,
        max(denominator) FILTER (WHERE metric = 'pct_missing_metadata')::INTEGER AS md1_n,
        max(value) FILTER (WHERE metric = 'pct_meets_ct_standard') AS md2_pct_meets_ct_standard,
        max(denominator) FILTER (WHERE metric = 'pct_meets_ct_standard')::INTEGER AS md2_n,
        max(value) FILTER (WHERE metric = 'mean_metadata_score') AS md4_mean_metadata_score,
        max(denominator) FILTER (WHERE metric = 'mean_metadata_score')::INTEGER AS md4_n,
        max(value) FILTER (WHERE metric = 'column_doc_coverage') AS md5_column_doc_coverage,
        max(denominator) FILTER (WHERE metric = 'column_doc_coverage')::INTEGER AS md5_n,
        max(value) FILTER (WHERE metric = 'pct_stale') AS fr2_pct_stale,
        max(denominator) FILTER (WHERE metric = 'pct_stale')::INTEGER AS fr2_n,
        max(value) FILTER (WHERE metric = 'pct_freshness_unknown') AS fr3_pct_freshness_unknown,
        max(denominator) FILTER (WHERE metric = 'pct_freshness_unknown')::INTEGER AS fr3_n,
        max(value) FILTER (WHERE metric = 'pct_unused') AS us2_pct_unused,
        max(denominator) FILTER (WHERE metric = 'pct_unused')::INTEGER AS us2_n
    FROM board.plan_metrics
    WHERE snapshot_date = $snapshot_date AND portal = $portal AND agency IS NOT NULL
    GROUP BY agency
)
SELECT
    $snapshot_date, $portal, agency, datasets,
    md1_pct_missing_metadata, md1_n, md2_pct_meets_ct_standard, md2_n,
    md4_mean_metadata_score, md4_n, md5_column_doc_coverage, md5_n,
    fr2_pct_stale, fr2_n, fr3_pct_freshness_unknown, fr3_n, us2_pct_unused, us2_n,
    datasets >= $ranked_at AS ranked,
    CASE WHEN datasets >= $ranked_at THEN
        row_number() OVER (
            PARTITION BY datasets >= $ranked_at
            ORDER BY md4_mean_metadata_score DESC, md1_pct_missing_metadata ASC, agency
        )
    END AS rank
FROM agency_metrics
WHERE datasets > 0
