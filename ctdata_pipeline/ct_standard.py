"""Connecticut's metadata standard, as its portal offers it: one fact that both the metrics
(MD-2 accepts only these categories) and the demo's data.ct.gov (its drop-down) rely on."""

# data.ct.gov's category drop-down (open data handbook, metadata standard).
CT_CATEGORIES = (
    "Business",
    "Education",
    "Environment and Natural Resources",
    "Government",
    "Health and Human Services",
    "Housing and Development",
    "Local Government",
    "Public Safety",
    "Tax and Revenue",
    "Transportation",
)
