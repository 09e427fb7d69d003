-- The rule every plan-metric value obeys: why a row cannot be right, or NULL. The metrics step
-- applies it before it writes a night; values_in_range applies it to the stored rows.
CREATE OR REPLACE TEMP MACRO metric_problem(unit, value, numerator, denominator, note) AS
    CASE
        WHEN unit = 'percent' AND (value < 0 OR value > 100)
            THEN 'percentage ' || value || ' outside 0-100'
        WHEN numerator < 0 OR denominator < 0 THEN 'negative count'
        WHEN unit = 'percent' AND numerator > denominator
            THEN 'numerator ' || numerator || ' above denominator ' || denominator
        WHEN value IS NULL AND note IS NULL THEN 'no value and no reason'
    END
