"""Models page: save a trained model under a name, reuse it later, download it as an archive,
or upload an archive made by DICE Studio."""
import pandas as pd
import streamlit as st

from dashboard import jobs, modelstore, ui
from dashboard.runview import SELECTED, architecture_name


def save_section():
    st.header("Save a trained model")
    job = ui.job_picker("Training run", only=lambda j: (j.model_dir / "model.json").is_file(), key="models_job")
    if job is None:
        st.info("No trained model yet: train one on the **Train** page.")
        return
    selected = job.selected() or {}
    records = {architecture_name(r): r for r in job.records()}
    names = [SELECTED] + [n for n in sorted(records) if n != architecture_name(selected)] if selected else [SELECTED]
    label = lambda n: (f"the selected model (K={selected.get('K')}, d={selected.get('d')})" if n == SELECTED  # noqa: E731
                       else f"K={records[n]['K']}, d={records[n]['d']}")
    c1, c2 = st.columns([2, 2])
    which = c1.selectbox("Model", names, format_func=label, key="save_which")
    default = f"{job.spec.get('cohort_name', 'model')[:30]} K{selected.get('K', '')} d{selected.get('d', '')}"
    name = c2.text_input("Name", value=ui.slug(default).replace("-", " ").strip() or "my model", key="save_name",
                         help="Letters, digits, spaces, '-', '_' or '.'; an existing name is never overwritten.")
    if st.button("Save the model", type="primary", key="save_model", icon=":material/save:"):
        source = job.model_dir if which == SELECTED else job.search_dir / "architectures" / which
        modelstore.save_from_run(name, source, job.id, which)
        st.success(f"Saved as '{name.strip()}'. It is listed below and can be used on the Patient page.")


def saved_section():
    from dice_core.modelfile import pack_model

    st.header("Saved models")
    saved = modelstore.list_models()
    if not saved:
        st.caption("No saved model yet.")
        return
    table = pd.DataFrame(saved)
    st.dataframe(table, hide_index=True, width="stretch", placeholder=ui.MISSING,
                 column_config={"validation AUC": st.column_config.NumberColumn(format="%.3f")})
    names = [m["name"] for m in saved]
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.selectbox("Model", names, key="saved_pick")
    c2.download_button("Download archive (.zip)", lambda: pack_model(modelstore.model_path(name)),
                       file_name=f"{ui.slug(name)}.dice.zip", mime="application/zip", key="download_model",
                       icon=":material/download:", help="Weights and settings only: no patient data or ids.")
    if c3.button("Use on the Patient page", key="use_model", icon=":material/person_search:"):
        ui.load_model_cached(modelstore.model_path(name))  # reload now: a damaged model is reported here
        st.session_state["patient_model"] = {"kind": "saved", "name": name}
        st.session_state["patient_model_kind"] = "A saved model"
        st.session_state["patient_saved"] = name
        st.switch_page("app_pages/patient.py")


def upload_section():
    st.header("Upload a model archive")
    st.caption("Only archives exported by DICE Studio (model.json + weights.safetensors) are accepted; the files "
               "are checked before anything is kept. Pickle files are never loaded.")
    upload = st.file_uploader("Model archive (.zip)", type=["zip"], key="model_upload")
    name = st.text_input("Save it as", key="upload_name")
    if st.button("Add the model", key="add_upload", disabled=upload is None):
        stored = modelstore.save_upload(name or upload.name.split(".")[0], upload)
        st.success(f"Added '{stored.name}'.")


def main():
    st.title("Models")
    st.write("Keep the models you want to reuse, share them as an archive, or add one a colleague sent you.")
    for section in (save_section, saved_section, upload_section):
        ui.guard(section)  # an error in one section leaves the others usable


ui.guard(main)
