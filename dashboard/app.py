"""DICE Studio, the clinician dashboard:  streamlit run dashboard/app.py

A thin layer over dice_core: pages in dashboard/app_pages/, training in a separate process
(dashboard/worker.py), jobs and results on disk (dashboard/jobs.py).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="DICE Studio", page_icon=":material/hub:", layout="wide")
ui.setup_logging()

PAGES = [
    st.Page("app_pages/cohort.py", title="Cohort", icon=":material/groups:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/results.py", title="Results", icon=":material/insights:"),
    st.Page("app_pages/patient.py", title="Patient", icon=":material/person_search:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/inventory_2:"),
]
page = st.navigation(PAGES)
ui.guard(ui.sidebar)
page.run()
