"""Connecticut-shaped words for the demo catalogs: agencies, CT's ten categories, the
data.ct.gov drop-down wordings, topics. Weights are rough shares, not measurements."""

from __future__ import annotations

from ctdata_pipeline.ct_standard import CT_CATEGORIES

# data.ct.gov's category drop-down, as the demo portal offers it.
CATEGORIES = CT_CATEGORIES

# (agency, attribution as agencies write it, share of datasets, main categories)
AGENCIES = (
    (
        "Department of Public Health",
        "CT Department of Public Health",
        14,
        ("Health and Human Services",),
    ),
    ("Department of Transportation", "CT Department of Transportation", 8, ("Transportation",)),
    (
        "Department of Energy and Environmental Protection",
        "CT DEEP",
        9,
        ("Environment and Natural Resources",),
    ),
    (
        "Office of Policy and Management",
        "Office of Policy and Management",
        8,
        ("Government", "Local Government"),
    ),
    ("State Department of Education", "CT State Department of Education", 9, ("Education",)),
    ("Department of Labor", "CT Department of Labor", 4, ("Business",)),
    ("Department of Revenue Services", "Department of Revenue Services", 5, ("Tax and Revenue",)),
    (
        "Department of Social Services",
        "Department of Social Services",
        5,
        ("Health and Human Services",),
    ),
    ("Department of Correction", "Department of Correction", 3, ("Public Safety",)),
    ("Department of Emergency Services and Public Protection", "DESPP", 4, ("Public Safety",)),
    ("Office of the State Comptroller", "Office of the State Comptroller", 4, ("Government",)),
    ("Department of Consumer Protection", "Department of Consumer Protection", 5, ("Business",)),
    ("Department of Housing", "Department of Housing", 3, ("Housing and Development",)),
    (
        "Department of Economic and Community Development",
        "DECD",
        3,
        ("Housing and Development", "Business"),
    ),
    ("Department of Children and Families", "DCF", 2, ("Health and Human Services",)),
    (
        "Department of Mental Health and Addiction Services",
        "DMHAS",
        3,
        ("Health and Human Services",),
    ),
    ("Department of Motor Vehicles", "DMV", 2, ("Transportation",)),
    ("Office of Early Childhood", "Office of Early Childhood", 2, ("Education",)),
    ("Secretary of the State", "Secretary of the State", 3, ("Government", "Business")),
    ("Judicial Branch", "Judicial Branch", 2, ("Public Safety",)),
    ("Department of Administrative Services", "DAS", 2, ("Government",)),
    (
        "Department of Agriculture",
        "Department of Agriculture",
        1,
        ("Environment and Natural Resources",),
    ),
    ("Office of Higher Education", "Office of Higher Education", 1, ("Education",)),
    ("Department of Banking", "Department of Banking", 1, ("Business",)),
    ("Insurance Department", "CT Insurance Department", 1, ("Business",)),
    (
        "Department of Veterans Affairs",
        "Department of Veterans Affairs",
        1,
        ("Health and Human Services",),
    ),
    (
        "Office of the Chief Medical Examiner",
        "OCME",
        1,
        ("Health and Human Services", "Public Safety"),
    ),
    ("Connecticut State Library", "Connecticut State Library", 1, ("Government",)),
)

TOPICS = {
    "Business": (
        "Business Registrations",
        "Liquor Permits",
        "Professional Licenses",
        "Unemployment Claims by Town",
        "Minimum Wage Violations",
        "Bank Branches",
        "Insurance Complaints",
        "Small Business Loans",
        "Cannabis Retail Prices",
    ),
    "Education": (
        "Public School Enrollment",
        "Graduation Rates",
        "Chronic Absenteeism",
        "Smarter Balanced Assessment Results",
        "Child Care Providers",
        "Higher Education Completions",
        "School Lunch Eligibility",
        "Teacher Certifications",
    ),
    "Environment and Natural Resources": (
        "Air Quality Monitoring",
        "Beach Closures",
        "State Park Attendance",
        "Fish Stocking",
        "Hazardous Waste Sites",
        "Energy Efficiency Rebates",
        "Farmers Markets",
        "Electric Vehicle Registrations",
    ),
    "Government": (
        "State Employee Payroll",
        "Open Payroll",
        "State Contracts",
        "Grants to Municipalities",
        "Board and Commission Members",
        "Public Records Requests",
        "Agency Budgets",
        "Executive Branch Workforce",
    ),
    "Health and Human Services": (
        "COVID-19 Cases and Deaths",
        "Accidental Drug Related Deaths",
        "Licensed Health Care Facilities",
        "Childhood Lead Poisoning",
        "SNAP Recipients by Town",
        "Medicaid Enrollment",
        "Births by Town",
        "Kindergarten Vaccination Rates",
        "Overdose Emergency Visits",
        "Nursing Home Inspections",
    ),
    "Housing and Development": (
        "Affordable Housing Appeals List",
        "Building Permits",
        "Real Estate Sales",
        "Housing Authority Units",
        "Brownfield Grants",
        "Homelessness Point-in-Time Count",
    ),
    "Local Government": (
        "Municipal Fiscal Indicators",
        "Mill Rates",
        "Town Population Estimates",
        "Grand List Values",
        "Municipal Debt",
    ),
    "Public Safety": (
        "State Police Crash Reports",
        "Correctional Facility Population",
        "Traffic Stops",
        "Fire Incidents",
        "Court Case Dispositions",
        "Emergency Calls by Town",
        "Use of Force Incidents",
    ),
    "Tax and Revenue": (
        "Sales and Use Tax by Industry",
        "Personal Income Tax by Town",
        "Highway Use Fees",
        "Corporation Business Tax",
        "Tax Credits Issued",
        "Property Tax Relief",
    ),
    "Transportation": (
        "Bridge Conditions",
        "Traffic Counts",
        "Rail Ridership",
        "Bus Ridership",
        "Road Construction Projects",
        "Registered Vehicles by Town",
        "Airport Passenger Counts",
    ),
}

GEOGRAPHIES = ("by Town", "by County", "Statewide", "by School District", "by Census Tract", "")
QUALIFIERS = (
    "",
    "Rates",
    "Counts",
    "Trends",
    "Summary",
    "Detail",
    "by Age Group",
    "by Race and Ethnicity",
    "by Month",
    "by Fiscal Year",
    "Quarterly Report",
    "Annual Report",
    "Dashboard Data",
    "Program Participation",
)

# data.ct.gov's Update Frequency wordings as they appear on the portal, with rough shares.
UPDATE_FREQUENCIES = (
    ("Daily", 6),
    ("Every weekday", 2),
    ("Weekly", 8),
    ("Bi-weekly", 2),
    ("Monthly", 14),
    ("Bi-monthly", 1),
    ("Quarterly", 8),
    ("Bi-annually", 3),
    ("Annually", 22),
    ("As needed", 8),
    ("Not updated (historical data)", 10),
    ("Not updated (historical only)", 2),
    ("Other", 3),
    ("Every 5 years", 1),
    (None, 10),
)
# The period each scheduled wording promises, in days (FR-0's f).
PROMISED_DAYS = {
    "Daily": 1,
    "Every weekday": 1,
    "Weekly": 7,
    "Bi-weekly": 14,
    "Monthly": 30,
    "Bi-monthly": 60,
    "Quarterly": 90,
    "Bi-annually": 180,
    "Annually": 365,
}

GEOGRAPHIC_UNITS = (
    ("State", 40),
    ("Municipality", 30),
    ("County", 8),
    ("Census tract", 5),
    ("School district", 4),
    (None, 13),
)

LICENSES = (
    ("Public Domain", 80),
    ("Creative Commons Attribution 4.0 International", 5),
    ("Open Data Commons Public Domain Dedication and License", 2),
    ("See Terms of Use", 2),
    (None, 11),
)

DESCRIPTION_OPENERS = (
    "This dataset contains",
    "The table lists",
    "Data on",
    "Counts of",
    "Annual figures for",
    "Monthly statistics on",
    "Records of",
)
DESCRIPTION_DETAILS = (
    "reported to the agency by municipalities and service providers",
    "as published in the agency's annual report",
    "collected under Connecticut General Statutes and updated by agency staff",
    "with one row per town and reporting period",
    "including counts, rates per 100,000 residents and the source of each figure",
    "compiled from administrative records; small counts are suppressed to protect privacy",
    "for use by residents, researchers and policy makers",
)
EMPTY_DESCRIPTIONS = ("", "&nbsp;", "<p><br></p>", "<div> </div>", "   ")
PLACEHOLDER_DESCRIPTIONS = ("TBD", "test", "n/a", "Description")

COLUMN_WORDS = (
    "Town",
    "County",
    "Year",
    "Month",
    "Date",
    "Count",
    "Rate",
    "Category",
    "Type",
    "Status",
    "Amount",
    "Agency",
    "Facility Name",
    "Address",
    "Latitude",
    "Longitude",
    "Population",
    "Percent",
    "Total",
    "Age Group",
    "Gender",
    "Race/Ethnicity",
    "Fiscal Year",
    "Program",
    "Measure",
    "Value",
    "Units",
    "Notes",
    "ID",
    "Zip Code",
)

FEDERATED_DOMAIN = "data.hartford.gov"

# The CT Geodata Portal side: publishers as Hub shows them, with their owner usernames.
HUB_PUBLISHERS = (
    ("Department of Energy and Environmental Protection", "ctdeep_gis", "deep.gis@ct.gov", 30),
    ("Department of Transportation", "ctdot_gis", "dot.gis@ct.gov", 15),
    ("Office of Policy and Management", "opm_gis", "opm.gis@ct.gov", 12),
    ("Connecticut Geospatial Information Systems Office", "ct_gis_office", "gis.office@ct.gov", 15),
    ("Department of Public Health", "dph_gis", "dph.gis@ct.gov", 6),
    ("UConn Center for Land Use Education and Research", "uconn_clear", "clear@uconn.edu", 8),
    ("Department of Emergency Services and Public Protection", "despp_gis", "despp.gis@ct.gov", 5),
    ("Department of Agriculture", "doag_gis", "agriculture@ct.gov", 3),
    ("Connecticut Siting Council", "siting_council", "siting.council@ct.gov", 2),
    ("Town of West Hartford", "westhartford_gis", "gis@westhartfordct.gov", 4),
)
HUB_TOPICS = (
    "Parcels",
    "Town Boundaries",
    "Protected Open Space",
    "DEEP Property",
    "Wetland Soils",
    "Road Centerlines",
    "Bridges",
    "FEMA Flood Zones",
    "Broadband Availability",
    "Census Tracts 2020",
    "Zoning Districts",
    "Aquifer Protection Areas",
    "Public Water Supply Watersheds",
    "Impervious Surface",
    "Land Cover",
    "Elevation Contours",
    "Trails",
    "State Parks and Forests",
    "Natural Diversity Database Areas",
    "Hospitals",
    "Schools",
    "Fire Stations",
    "Polling Places",
    "Rail Lines",
    "Bus Stops",
    "Traffic Signals",
    "Culverts",
    "Dams",
    "Shellfish Areas",
    "Coastal Boundary",
    "Environmental Justice Communities",
    "Opportunity Zones",
)
HUB_ACCRUAL = (
    ("R/P1Y", 14),
    ("R/P1M", 6),
    ("irregular", 8),
    ("R/P3M", 5),
    ("R/P1W", 2),
    ("R/P1D", 1),
    ("R/P6M", 3),
    (None, 61),
)
