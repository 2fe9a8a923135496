"""PhysioNet 2012 loader: layouts, quirks (on a tiny fake set A) and the real set A when present."""
import io
import math
import shutil
import tarfile

import numpy as np
import pytest

from dice_core.data.physionet import PLAUSIBLE_RANGES, default_physionet_path, load_physionet2012
from dice_core.errors import CohortError

HEADER = "Time,Parameter,Value\n"
RECORDS = {
    # pH recorded x100, a temperature in the wrong unit, a -1 weight after admission, a later real weight
    "100001": HEADER + "00:00,RecordID,100001\n00:00,Age,70\n00:00,Gender,1\n00:00,Height,-1\n00:00,ICUType,2\n"
                       "00:00,Weight,80\n01:30,pH,735\n01:30,HR,88\n02:00,Temp,10\n03:00,Weight,-1\n"
                       "05:00,Weight,81\n47:59,HR,90\n",
    # descriptors only
    "100002": HEADER + "00:00,RecordID,100002\n00:00,Age,50\n00:00,Gender,0\n00:00,Height,170\n00:00,ICUType,4\n"
                       "00:00,Weight,-1\n",
    # Windows line endings, a blank line, an unreadable row, no trailing newline, odd descriptors
    "100003": (HEADER + "00:00,RecordID,100003\n00:00,Age,90\n00:00,Gender,-1\n00:00,Height,431.8\n"
               "00:00,ICUType,3\n00:00,Weight,0\n\n00:10,HR,120\nxx:yy,HR,80\n00:20,MechVent,1").replace("\n", "\r\n"),
    # no outcome in the outcomes file
    "100004": HEADER + "00:00,RecordID,100004\n00:00,Age,40\n00:00,Gender,0\n00:00,Height,160\n00:00,ICUType,1\n"
                       "00:00,Weight,60\n01:00,HR,70\n",
}
OUTCOMES = ("RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death\n"
            "100001,20,10,5,3,1\n100002,8,2,4,-1,0\n100003,12,5,9,-1,0\n")
LEAKY = ["SAPS-I", "SOFA", "Length_of_stay", "Survival"]


def make_folder(root):
    folder = root / "set-a"
    folder.mkdir(parents=True)
    for record, text in RECORDS.items():
        (folder / f"{record}.txt").write_bytes(text.encode())
    (root / "Outcomes-a.txt").write_text(OUTCOMES)
    return folder


def make_tar(path, outcomes_inside=True):
    with tarfile.open(path, "w:gz") as archive:
        def add(name, text):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for record, text in RECORDS.items():
            add(f"set-a/{record}.txt", text)
        if outcomes_inside:
            add("Outcomes-a.txt", OUTCOMES)
    return path


@pytest.fixture
def fake_tar(tmp_path):
    return make_tar(tmp_path / "set-a.tar.gz")


def messages(cohort):
    return [p.message for p in cohort.report.problems]


def test_patients_and_covariates(fake_tar):
    cohort = load_physionet2012(fake_tar)
    patients = cohort.patients
    assert patients.index.tolist() == ["100001", "100002", "100003"]  # 100004 has no outcome
    assert list(patients.columns) == ["outcome", "Age", "Gender", "Height", "ICUType", "Weight"]
    assert patients["outcome"].tolist() == [1, 0, 0]
    assert patients["Gender"].tolist()[:2] == ["male", "female"] and patients["Gender"].isna().tolist()[2]
    assert patients["ICUType"].tolist() == ["cardiac surgery recovery", "surgical", "medical"]
    assert patients["Height"].isna().tolist() == [True, False, True]  # -1, 170, 431.8 (implausible)
    assert patients.loc["100001", "Weight"] == 80 and patients[["Weight"]].iloc[1:].isna().all().all()
    assert cohort.covariates == ["Age", "Gender"] and cohort.group == "ICUType"
    assert cohort.outcome_name == "In-hospital_death"


def test_outcome_leaks_are_never_loaded(fake_tar):
    cohort = load_physionet2012(fake_tar, covariates=("Age", "Gender", "Height", "Weight"))
    assert not set(LEAKY) & set(cohort.patients.columns)
    assert not set(LEAKY) & set(cohort.variables)
    with pytest.raises(CohortError, match=r"\['SOFA'\] are not PhysioNet descriptors"):
        load_physionet2012(fake_tar, covariates=("Age", "SOFA"))


def test_events_are_cleaned(fake_tar):
    events = load_physionet2012(fake_tar).events
    first = events[events["patient_id"] == "100001"].set_index("variable")
    assert first.loc["pH", "value"] == pytest.approx(7.35)  # x100 undone
    assert first.loc["pH", "time"] == 1.5  # 01:30
    assert "Temp" not in first.index  # 10 °C removed
    assert first.loc[["Weight"], ["time", "value"]].to_numpy().tolist() == [[5.0, 81.0]]  # admission one: covariate
    assert events.loc[events["patient_id"] == "100001", "time"].max() == pytest.approx(47 + 59 / 60)
    third = events[events["patient_id"] == "100003"]
    assert third["variable"].tolist() == ["HR", "MechVent"] and third["time"].tolist() == [pytest.approx(1 / 6),
                                                                                          pytest.approx(1 / 3)]
    assert list(events.columns) == ["patient_id", "time", "variable", "value"]
    assert events["value"].notna().all()


def test_every_quirk_is_reported(fake_tar):
    found = messages(load_physionet2012(fake_tar))
    expected = [
        "Temp: 1 value below 25 °C removed as implausible",
        "pH: 1 value between 65 and 800 were recorded x100 and are divided by 100",
        "Weight: 1 value of -1 (not recorded) removed",
        "Height: 1 admission Height above 250 cm removed as implausible",
        "Weight: 1 admission Weight below 20 kg removed as implausible",
        "1 rows cannot be read as 'HH:MM,Parameter,Value' and are skipped (examples are record ids)",
        "1 stays have no 0/1 In-hospital_death and are left out",
        "1 patient without events (examples are patient ids): kept with an empty sequence",
    ]
    for message in expected:
        assert message in found, found
    assert any(m.startswith("descriptors recorded as -1 (not recorded) are missing: Gender 1, Height 1, Weight 1")
               for m in found)
    assert all(p.severity == "warning" for p in load_physionet2012(fake_tar).report.problems)


def test_folder_layouts_and_outcomes_beside_the_archive(tmp_path, fake_tar):
    reference = load_physionet2012(fake_tar)
    folder = make_folder(tmp_path / "unpacked")
    (tmp_path / "beside").mkdir()
    outside = make_tar(tmp_path / "beside" / "set-a.tar.gz", outcomes_inside=False)
    shutil.copy(tmp_path / "unpacked" / "Outcomes-a.txt", tmp_path / "beside" / "Outcomes-a.txt")
    for path in (folder, folder.parent, outside):
        cohort = load_physionet2012(path)
        assert cohort.patients.equals(reference.patients)
        assert cohort.events.equals(reference.events)


def test_missing_data_says_where_it_looked(tmp_path):
    with pytest.raises(CohortError, match="PhysioNet set A not found at .*nowhere; pass the set-a folder"):
        load_physionet2012(tmp_path / "nowhere")
    make_folder(tmp_path / "no_outcomes")
    (tmp_path / "no_outcomes" / "Outcomes-a.txt").unlink()
    with pytest.raises(CohortError, match="Outcomes-a.txt not found in or beside"):
        load_physionet2012(tmp_path / "no_outcomes")


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DICE_PHYSIONET_PATH", str(tmp_path / "x.tar.gz"))
    assert default_physionet_path() == tmp_path / "x.tar.gz"
    monkeypatch.delenv("DICE_PHYSIONET_PATH")
    assert default_physionet_path().parts[-4:] == ("shared", "data", "physionet2012", "set-a.tar.gz")


def test_plausible_ranges_are_ordered():
    assert all(low < high for low, high in PLAUSIBLE_RANGES.values())
    assert PLAUSIBLE_RANGES["Temp"][0] == 25 and PLAUSIBLE_RANGES["pH"] == (6.5, 8.0)


# ------------------------------------------------------------------------------ real set A


@pytest.fixture(scope="module")
def set_a(physionet_path):
    return load_physionet2012(physionet_path)


@pytest.mark.physionet
def test_real_set_a_sizes(set_a):
    assert set_a.n_patients == 4000
    assert int(set_a.patients["outcome"].sum()) == 554
    assert len(set_a.variables) == 37
    assert set_a.summary()["patients_without_events"] == 3  # descriptors-only stays are kept
    assert set(set_a.patients["ICUType"].unique()) == {"coronary care", "cardiac surgery recovery", "medical",
                                                       "surgical"}


@pytest.mark.physionet
def test_real_set_a_is_clean(set_a):
    values = set_a.events.groupby("variable")["value"]
    low, high = values.min(), values.max()
    for variable, (lo, hi) in PLAUSIBLE_RANGES.items():
        if variable in low.index:
            assert lo <= low[variable] and high[variable] <= hi, variable
    assert high["pH"] < 8 and low["Temp"] >= 25
    assert "Temp: 125 values below 25 °C removed as implausible" in messages(set_a)
    assert "pH: 8 values between 65 and 800 were recorded x100 and are divided by 100" in messages(set_a)
    assert set_a.report.errors == []
    assert not math.isnan(set_a.patients["Age"].mean()) and np.isfinite(set_a.events["time"]).all()
