-- values_in_range: every problem of one portal's night in board.plan_metrics, one row each:
-- a value that breaks metric_problem's rule, a metric and agency stored more than once, a
-- metric of metrics.md (by id) with no whole-portal value.
WITH night AS (
    SELECT * FROM board.plan_metrics WHERE snapshot_date = $night AND portal = $portal
)
SELECT metric, agency, metric_problem(unit, value, numerator, denominator, note) AS problem
FROM night
WHERE problem IS NOT NULL
UNION ALL
SELECT metric, agency, count(*) || ' rows for one metric and agency'
FROM night
GROUP BY metric, agency
HAVING count(*) > 1
UNION ALL
SELECT expected.metric_id, NULL, 'no whole-portal value stored'
FROM unnest($metric_ids) AS expected(metric_id)
WHERE NOT EXISTS (SELECT 1 FROM night WHERE metric_id = expected.metric_id AND agency IS NULL)
ORDER BY metric, agency NULLS FIRST, problem
