-- AC-2 and GV-1 of one portal's night, whole portal and per agency, added to night_metrics
-- from night_practice (practice.sql).
INSERT INTO night_metrics
-- AC-2 pct_machine_readable: datasets with a machine-readable distribution ÷ in-scope datasets
SELECT agency, 'AC-2', 'pct_machine_readable',
       count(*) FILTER (WHERE machine_readable), count(*),
       pct(count(*) FILTER (WHERE machine_readable), count(*)), 'percent', NULL
FROM night_practice
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- GV-1 automation_share_inferred: datasets inferred automated ÷ scheduled datasets with
-- f <= 90 days held by the portal's snapshots for at least 180 days
SELECT agency, 'GV-1', 'automation_share_inferred',
       count(*) FILTER (WHERE automated_inferred), count(*) FILTER (WHERE automation_judged),
       pct(count(*) FILTER (WHERE automated_inferred), count(*) FILTER (WHERE automation_judged)),
       'percent',
       CASE WHEN count(*) FILTER (WHERE automation_judged) = 0 THEN
           CASE WHEN (SELECT $snapshot_date - min(snapshot_date) FROM catalog.snapshots
                      WHERE portal = $portal) < $automation_days
               THEN 'insufficient history: the portal''s snapshots span '
                    || (SELECT $snapshot_date - min(snapshot_date) FROM catalog.snapshots
                        WHERE portal = $portal)
                    || ' of ' || $automation_days || ' days'
               ELSE 'no scheduled dataset (f <= 90 days) held for 180 days'
           END
       END
FROM night_practice
GROUP BY GROUPING SETS ((), (agency))
