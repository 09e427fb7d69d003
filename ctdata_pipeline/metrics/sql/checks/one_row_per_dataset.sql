-- one_row_per_dataset: how metrics.datasets differs, for one portal's night, from the in-scope
-- datasets of its stored snapshot: a dataset assessed more than once ('duplicated'), one not
-- assessed ('missing'), one assessed that is no in-scope dataset of the snapshot ('out of scope').
WITH assessed AS (
    SELECT asset_id, count(*) AS assessments
    FROM metrics.datasets
    WHERE snapshot_date = $night AND portal = $portal
    GROUP BY asset_id
),
in_scope AS (
    SELECT DISTINCT asset_id
    FROM catalog.assets
    WHERE snapshot_date = $night AND portal = $portal AND in_scope
)
SELECT
    coalesce(assessed.asset_id, in_scope.asset_id) AS asset_id,
    CASE
        WHEN assessed.asset_id IS NULL THEN 'missing'
        WHEN in_scope.asset_id IS NULL THEN 'out of scope'
        ELSE 'duplicated'
    END AS problem,
    coalesce(assessments, 0) AS assessments
FROM assessed
FULL JOIN in_scope ON assessed.asset_id = in_scope.asset_id
WHERE assessed.asset_id IS NULL OR in_scope.asset_id IS NULL OR assessments > 1
ORDER BY problem, asset_id
