-- AC-2's format rules as macros: a distribution's format by its mediaType, its format field or
-- its URL, NULL when that one names none ('other': a format that is not machine-readable).
CREATE OR REPLACE TEMP MACRO format_of_media_key(v) AS
    CASE
        WHEN v IS NULL OR v = '' THEN NULL
        WHEN v IN ('text/csv', 'application/csv') THEN 'csv'
        WHEN v = 'text/tab-separated-values' THEN 'tsv'
        WHEN v IN ('application/geo+json', 'application/vnd.geo+json') THEN 'geojson'
        WHEN v IN ('application/json', 'text/json') THEN 'json'
        WHEN v IN ('application/rdf+xml', 'text/turtle', 'application/ld+json',
                   'application/n-triples') THEN 'rdf'
        WHEN v = 'application/vnd.google-earth.kml+xml' THEN 'kml'
        WHEN v = 'application/vnd.google-earth.kmz' THEN 'kmz'
        WHEN v = 'application/gpx+xml' THEN 'gpx'
        WHEN v = 'application/geopackage+sqlite3' THEN 'geopackage'
        WHEN v IN ('application/vnd.apache.parquet', 'application/x-parquet') THEN 'parquet'
        WHEN v IN ('application/vnd.ogc.wms_xml', 'application/vnd.ogc.wfs_xml',
                   'application/vnd.ogc.wmts_xml') THEN 'ogc_service'
        WHEN v IN ('application/x-shapefile', 'application/x-esri-shape') THEN 'shapefile'
        WHEN v IN ('application/xml', 'text/xml') THEN 'xml'
        WHEN v = 'application/vnd.ms-excel' THEN 'xls'
        WHEN v = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' THEN 'xlsx'
        -- containers and generic types name no format: ask the format field, then the URL
        WHEN v IN ('application/octet-stream', 'binary/octet-stream', 'application/zip',
                   'application/x-zip-compressed', 'application/http', 'application/unknown')
            THEN NULL
        ELSE 'other'
    END;

CREATE OR REPLACE TEMP MACRO format_of_media_type(media_type) AS
    format_of_media_key(lower(trim(split_part(media_type, ';', 1))));

CREATE OR REPLACE TEMP MACRO format_of_name_key(v) AS
    CASE
        WHEN v IS NULL OR v = '' THEN NULL
        WHEN v LIKE '%/%' THEN format_of_media_key(split_part(v, ';', 1))  -- a media type in the format field
        WHEN v = 'csv' THEN 'csv'
        WHEN v = 'tsv' THEN 'tsv'
        WHEN v = 'geojson' THEN 'geojson'
        WHEN v = 'json' THEN 'json'
        WHEN v IN ('rdf', 'rdf/xml', 'ttl', 'turtle', 'json-ld', 'jsonld', 'n-triples') THEN 'rdf'
        WHEN v = 'kml' THEN 'kml'
        WHEN v = 'kmz' THEN 'kmz'
        WHEN v = 'gpx' THEN 'gpx'
        WHEN v IN ('gpkg', 'geopackage') THEN 'geopackage'
        WHEN v IN ('shp', 'shapefile', 'zipped shapefile', 'esri shapefile') THEN 'shapefile'
        WHEN v IN ('parquet', 'geoparquet') THEN 'parquet'
        WHEN v IN ('arcgis geoservices rest api', 'esri rest', 'arcgis rest', 'arcgis rest api',
                   'geoservice', 'feature service', 'map service') THEN 'arcgis_rest'
        WHEN v IN ('wms', 'wfs', 'wmts', 'ogc wms', 'ogc wfs', 'ogc wmts') THEN 'ogc_service'
        WHEN v IN ('api', 'rest api', 'rest', 'soda', 'odata') THEN 'api'
        WHEN v = 'xml' THEN 'xml'
        WHEN v = 'xls' THEN 'xls'
        WHEN v = 'xlsx' THEN 'xlsx'
        WHEN v IN ('zip', 'data', 'file', 'download') THEN NULL  -- names no format
        ELSE 'other'
    END;

CREATE OR REPLACE TEMP MACRO format_of_name(name) AS format_of_name_key(lower(trim(name)));

CREATE OR REPLACE TEMP MACRO format_of_url_parts(path, whole) AS
    CASE
        WHEN path IS NULL OR path = '' THEN NULL
        WHEN regexp_matches(path, '/(featureserver|mapserver|imageserver)(/\d+)?/?$')
            THEN 'arcgis_rest'
        WHEN regexp_matches(whole, '(wmsserver|wfsserver|service=(wms|wfs|wmts))') THEN 'ogc_service'
        WHEN regexp_matches(path, '\.csv$') THEN 'csv'
        WHEN regexp_matches(path, '\.tsv$') THEN 'tsv'
        WHEN regexp_matches(path, '\.geojson$') THEN 'geojson'
        WHEN regexp_matches(path, '\.json$') THEN 'json'
        WHEN regexp_matches(path, '\.(rdf|ttl|jsonld|nt)$') THEN 'rdf'
        WHEN regexp_matches(path, '\.kml$') THEN 'kml'
        WHEN regexp_matches(path, '\.kmz$') THEN 'kmz'
        WHEN regexp_matches(path, '\.gpx$') THEN 'gpx'
        WHEN regexp_matches(path, '\.gpkg$') THEN 'geopackage'
        WHEN regexp_matches(path, '\.(shp|shp\.zip)$') THEN 'shapefile'
        WHEN regexp_matches(path, '\.parquet$') THEN 'parquet'
        WHEN regexp_matches(path, '\.xml$') THEN 'xml'
        WHEN regexp_matches(path, '\.xls$') THEN 'xls'
        WHEN regexp_matches(path, '\.xlsx$') THEN 'xlsx'
    END;

CREATE OR REPLACE TEMP MACRO format_of_url(url) AS
    format_of_url_parts(lower(regexp_replace(trim(url), '[?#].*$', '')), lower(trim(url)));
