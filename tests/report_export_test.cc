// Reports.Export beyond the repetitions CSV: the sets CSV, the FHIR R4
// bundle and the clinic summary (CSV, PDF read back with poppler, HTML),
// exported by a real hub over a clinic record built by hand (so that every
// number is known), through gRPC and through the `stephub report` CLI; and
// the statuses bad requests get.
#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "hub/api/hub_server.h"
#include "hub/store/store.h"
#include "stephub/v1/reports.grpc.pb.h"
#include "tests/test_hub.h"
#include "tests/testing.h"
#include "tools/cli.h"

namespace stephub {
namespace {

using nlohmann::json;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kVersion[] = "test-1";

absl::Time At(int y, int mo, int d, int h, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s),
                         absl::UTCTimeZone());
}

google::protobuf::Timestamp Proto(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(t));
}

struct Rep {
  double drop;
  v1::Verdict verdict;
  bool clean;
  v1::QualityCategory category;
  std::string problem;
};

Rep Clean(double drop, v1::QualityCategory c = v1::QUALITY_CATEGORY_GOOD) {
  return {drop, v1::VERDICT_CLEAN, true, c, ""};
}
Rep Dropped(double drop,
            v1::QualityCategory c = v1::QUALITY_CATEGORY_MODERATE) {
  return {drop, v1::VERDICT_PELVIC_DROP, false, c, ""};
}
Rep Unseen() {
  return {0, v1::VERDICT_NOT_ASSESSED, false, v1::QUALITY_CATEGORY_UNSPECIFIED,
          "no usable sacral IMU, mode 2"};
}

// A clinic record written straight through the store, then served by a
// hub whose clock stands at 2026-03-01 12:00 UTC.
class ReportExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::OpenSqliteStore(dir_.path() + "/stephub.db");
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    BuildHistory();
    // Writes are queued in order: once the last is committed, all are.
    std::promise<absl::Status> done;
    store_->AddEventAt(At(2026, 2, 20, 9), "station_disconnected", "bay-1", "",
                       [&](absl::Status s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
    store_.reset();

    api::HubOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = dir_.path();
    testing::UseTestTls(&options);
    options.time_zone = "UTC";
    options.clock = [] { return At(2026, 3, 1, 12); };
    options.fold_samples_after = absl::InfiniteDuration();
    auto hub = testing::StartHub(options);
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(*hub);
    address_ = absl::StrCat("127.0.0.1:", hub_->port());
    stub_ = v1::Reports::NewStub(testing::StaffChannel(hub_->port()));
    setenv("STEPHUB_TOKEN", testing::SignIn(hub_->port()).c_str(), 1);
  }

  int64_t Patient(const std::string& name, const std::string& ref = "") {
    auto p = store_->CreatePatient(name, ref);
    EXPECT_TRUE(p.ok()) << p.status();
    return p->patient_id();
  }

  // One ended set of `reps` started at `start` (ten minutes long).
  int64_t AddSet(int64_t patient, absl::Time start, v1::StanceSide side,
                 const std::string& station, const std::string& load,
                 const std::vector<Rep>& reps) {
    v1::ExerciseSet set;
    set.set_station_id(station);
    set.set_patient_id(patient);
    set.set_stance_side(side);
    set.set_exercise("lateral_step_down");
    set.set_load(load);
    set.set_level(2);
    set.set_scoring_version(kVersion);
    *set.mutable_started_at() = Proto(start);
    auto created = store_->CreateSet(
        set,
        absl::FormatCivilTime(absl::ToCivilDay(start, absl::UTCTimeZone())),
        v1::StationHello());
    EXPECT_TRUE(created.ok()) << created.status();
    const int64_t id = created->set_id();
    for (size_t i = 0; i < reps.size(); ++i) {
      v1::Repetition r;
      r.set_set_id(id);
      r.set_number(static_cast<uint32_t>(i + 1));
      r.set_station_id(station);
      r.set_patient_id(patient);
      r.set_start_us(1'000'000 * static_cast<int64_t>(i + 1));
      r.set_deepest_us(r.start_us() + 400'000);
      r.set_end_us(r.start_us() + 900'000);
      r.set_peak_pelvic_drop_deg(reps[i].drop);
      r.set_verdict(reps[i].verdict);
      r.set_clean(reps[i].clean);
      r.set_scoring_version(kVersion);
      *r.mutable_scored_at() = Proto(start);
      if (reps[i].category != v1::QUALITY_CATEGORY_UNSPECIFIED) {
        r.mutable_quality()->set_category(reps[i].category);
        r.mutable_quality()->set_total(
            reps[i].category == v1::QUALITY_CATEGORY_GOOD       ? 1
            : reps[i].category == v1::QUALITY_CATEGORY_MODERATE ? 2
                                                                : 4);
      }
      if (!reps[i].problem.empty()) r.add_problems(reps[i].problem);
      std::promise<absl::Status> done;
      store_->AddRepetition(r, [&](absl::Status s) { done.set_value(s); });
      EXPECT_TRUE(done.get_future().get().ok());
    }
    auto ended =
        store_->EndSet(id, start + absl::Minutes(10), std::nullopt, false);
    EXPECT_TRUE(ended.ok()) << ended.status();
    return id;
  }

  void Event(absl::Time t, const std::string& kind, const std::string& station,
             const std::string& detail = "") {
    store_->AddEventAt(t, kind, station, detail, nullptr);
  }

  // The clinic of docs/REPORTS.md's worked example, weeks from Monday
  // 2026-01-05 (UTC):
  //  Anna: three sessions in week 0, then nothing.
  //  Ben: three sessions a week for six weeks, his pelvis dropping more
  //       each week (6.0° + 0.5° a week): not improving.
  //  Cara: starts in week 5, every repetition clean: ready to progress;
  //        her second session comes 14 h after the first.
  //  Dan: seen in December only, outside the period.
  //  bay-1 is off for 6 h on 20 January and loses spooled batches; bay-2
  //  appears on 1 February and goes off at noon on the period's last day.
  void BuildHistory() {
    anna_ = Patient("Anna K.", "MRN-1");
    anna_sets_.push_back(AddSet(anna_, At(2026, 1, 5, 9), v1::STANCE_SIDE_LEFT,
                                "bay-1", "bodyweight",
                                {Clean(2.0), Dropped(6.5), Clean(-1.0),
                                 Clean(3.5, v1::QUALITY_CATEGORY_POOR)}));
    anna_sets_.push_back(AddSet(anna_, At(2026, 1, 7, 9), v1::STANCE_SIDE_RIGHT,
                                "bay-2", "band, red", {Unseen(), Unseen()}));
    anna_sets_.push_back(AddSet(anna_, At(2026, 1, 9, 9), v1::STANCE_SIDE_LEFT,
                                "bay-1", "bodyweight", {}));
    ben_ = Patient("Ben L.");
    for (int week = 0; week < 6; ++week) {
      const double drop = 6.0 + 0.5 * week;
      for (int day : {0, 2, 4}) {
        const absl::Time t =
            absl::FromCivil(absl::CivilDay(2026, 1, 5) + 7 * week + day,
                            absl::UTCTimeZone()) +
            absl::Hours(10);
        AddSet(ben_, t, v1::STANCE_SIDE_LEFT, "bay-1", "bodyweight",
               {Dropped(drop), Dropped(drop)});
      }
    }
    cara_ = Patient("Cara M.");
    for (absl::Time t : {At(2026, 2, 9, 18), At(2026, 2, 10, 8),
                         At(2026, 2, 13, 9), At(2026, 2, 20, 9)}) {
      AddSet(cara_, t, v1::STANCE_SIDE_LEFT, "bay-2", "bodyweight",
             {Clean(1.0), Clean(1.0)});
    }
    dan_ = Patient("Dan O.");
    AddSet(dan_, At(2025, 12, 1, 9), v1::STANCE_SIDE_RIGHT, "bay-1",
           "bodyweight", {Clean(1.0)});

    Event(At(2026, 1, 1, 8), "station_connected", "bay-1", "boot a");
    Event(At(2026, 1, 6, 8), "sensor_state", "bay-1", "not a gap");
    Event(At(2026, 1, 20, 10), "station_disconnected", "bay-1");
    Event(At(2026, 1, 20, 16), "station_connected", "bay-1", "boot b");
    Event(At(2026, 1, 20, 16, 0, 1), "station_spool_loss", "bay-1",
          "batches 5 to 9 of boot b were lost on the station");
    Event(At(2026, 2, 1, 0), "station_connected", "bay-2", "boot c");
    Event(At(2026, 2, 15, 12), "station_disconnected", "bay-2");
  }

  struct Export {
    grpc::Status status;
    std::string data;
    std::string content_type;
    std::string file_name;
    int chunks = 0;
  };

  Export Run(const v1::ExportRequest& request) {
    grpc::ClientContext ctx;
    auto reader = stub_->Export(&ctx, request);
    Export out;
    v1::ReportChunk chunk;
    while (reader->Read(&chunk)) {
      if (out.chunks++ == 0) {
        out.content_type = chunk.content_type();
        out.file_name = chunk.file_name();
      }
      out.data += chunk.data();
    }
    out.status = reader->Finish();
    return out;
  }

  Export PatientReport(int64_t patient, v1::ReportFormat format) {
    v1::ExportRequest req;
    req.set_kind(v1::REPORT_KIND_PATIENT);
    req.set_patient_id(patient);
    req.set_format(format);
    return Run(req);
  }

  Export ClinicReport(const std::string& from, const std::string& to,
                      v1::ReportFormat format = v1::REPORT_FORMAT_CSV) {
    v1::ExportRequest req;
    req.set_kind(v1::REPORT_KIND_CLINIC);
    req.set_format(format);
    req.set_from(from);
    req.set_to(to);
    return Run(req);
  }

  testing::TempDir dir_;
  std::unique_ptr<store::ClinicStore> store_;
  std::unique_ptr<api::HubServer> hub_;
  std::string address_;
  std::unique_ptr<v1::Reports::Stub> stub_;
  int64_t anna_ = 0, ben_ = 0, cara_ = 0, dan_ = 0;
  std::vector<int64_t> anna_sets_;
};

// Rows of a CSV without quoted newlines (none of these reports has any).
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          field += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        fields.push_back(std::move(field));
        field.clear();
      } else {
        field += c;
      }
    }
    fields.push_back(std::move(field));
    rows.push_back(std::move(fields));
  }
  return rows;
}

TEST_F(ReportExportTest, RepetitionsCsvIsAsBeforeForAnOldStyleRequest) {
  // No kind, as clients from before kinds existed send it.
  v1::ExportRequest req;
  req.set_patient_id(anna_);
  req.set_format(v1::REPORT_FORMAT_CSV);
  const Export e = Run(req);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(e.file_name, absl::StrCat("patient-", anna_, "-repetitions.csv"));
  const std::string p = absl::StrCat(anna_, ",Anna K.,");
  const std::string s1 = absl::StrCat(
      p, anna_sets_[0], ",bay-1,left,lateral_step_down,bodyweight,",
      "2026-01-05T09:00:00Z,");
  const std::string s2 = absl::StrCat(
      p, anna_sets_[1], ",bay-2,right,lateral_step_down,\"band, red\",",
      "2026-01-07T09:00:00Z,");
  EXPECT_EQ(
      e.data,
      absl::StrCat(
          "patient_id,patient,set_id,station_id,stance_side,exercise,load,"
          "set_started_utc,rep,start_us,deepest_us,end_us,"
          "peak_pelvic_drop_deg,verdict,clean,scoring_version,"
          "peak_trunk_lean_deg,knee_flexion_deg,knee_valgus_deg,"
          "cop_ml_range_mm,free_foot_load_fraction,quality_total,"
          "quality_category,problems\n",
          s1, "1,1000000,1400000,1900000,2.00,clean,1,test-1,,,,,,1,good,\n",
          s1,
          "2,2000000,2400000,2900000,6.50,pelvic_drop,0,test-1,,,,,,2,"
          "moderate,\n",
          s1, "3,3000000,3400000,3900000,-1.00,clean,1,test-1,,,,,,1,good,\n",
          s1, "4,4000000,4400000,4900000,3.50,clean,1,test-1,,,,,,4,poor,\n",
          s2,
          "1,1000000,1400000,1900000,,not_assessed,,test-1,,,,,,,,\"no usable "
          "sacral IMU, mode 2\"\n",
          s2,
          "2,2000000,2400000,2900000,,not_assessed,,test-1,,,,,,,,\"no usable "
          "sacral IMU, mode 2\"\n"));
}

TEST_F(ReportExportTest, SetsCsvHasTheDocumentedColumnsAndExactValues) {
  const Export e = PatientReport(anna_, v1::REPORT_FORMAT_SETS_CSV);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.file_name, absl::StrCat("patient-", anna_, "-sets.csv"));
  auto rows = ParseCsv(e.data);
  ASSERT_EQ(rows.size(), 5u);  // header, three sets, the final empty line
  EXPECT_EQ(rows.back(), std::vector<std::string>{""});
  const std::vector<std::string> header = {"patient_id",
                                           "patient",
                                           "set_id",
                                           "day",
                                           "set_started_utc",
                                           "set_ended_utc",
                                           "station_id",
                                           "stance_side",
                                           "exercise",
                                           "load",
                                           "level",
                                           "repetitions",
                                           "clean_repetitions",
                                           "clean_percent",
                                           "mean_pelvic_drop_deg",
                                           "worst_pelvic_drop_deg",
                                           "quality_good",
                                           "quality_moderate",
                                           "quality_poor",
                                           "quality_not_assessed",
                                           "scoring_version"};
  ASSERT_EQ(rows[0], header);
  auto row = [&](size_t i) {
    std::map<std::string, std::string> m;
    EXPECT_EQ(rows[i].size(), header.size());
    for (size_t c = 0; c < header.size() && c < rows[i].size(); ++c) {
      m[header[c]] = rows[i][c];
    }
    return m;
  };
  auto first = row(1);
  EXPECT_EQ(first["set_id"], absl::StrCat(anna_sets_[0]));
  EXPECT_EQ(first["day"], "2026-01-05");
  EXPECT_EQ(first["set_started_utc"], "2026-01-05T09:00:00Z");
  EXPECT_EQ(first["set_ended_utc"], "2026-01-05T09:10:00Z");
  EXPECT_EQ(first["station_id"], "bay-1");
  EXPECT_EQ(first["stance_side"], "left");
  EXPECT_EQ(first["load"], "bodyweight");
  EXPECT_EQ(first["level"], "2");
  EXPECT_EQ(first["repetitions"], "4");
  EXPECT_EQ(first["clean_repetitions"], "3");
  EXPECT_EQ(first["clean_percent"], "75.0");
  EXPECT_EQ(first["mean_pelvic_drop_deg"], "2.75");  // (2 + 6.5 - 1 + 3.5) / 4
  EXPECT_EQ(first["worst_pelvic_drop_deg"], "6.50");
  EXPECT_EQ(first["quality_good"], "2");
  EXPECT_EQ(first["quality_moderate"], "1");
  EXPECT_EQ(first["quality_poor"], "1");
  EXPECT_EQ(first["quality_not_assessed"], "0");
  EXPECT_EQ(first["scoring_version"], "test-1");
  // The pelvis never seen: no drop is stated, not a drop of zero.
  auto second = row(2);
  EXPECT_EQ(second["load"], "band, red");
  EXPECT_EQ(second["stance_side"], "right");
  EXPECT_EQ(second["repetitions"], "2");
  EXPECT_EQ(second["clean_repetitions"], "0");
  EXPECT_EQ(second["clean_percent"], "0.0");
  EXPECT_EQ(second["mean_pelvic_drop_deg"], "");
  EXPECT_EQ(second["worst_pelvic_drop_deg"], "");
  EXPECT_EQ(second["quality_not_assessed"], "2");
  // No repetitions: no share either.
  auto third = row(3);
  EXPECT_EQ(third["repetitions"], "0");
  EXPECT_EQ(third["clean_percent"], "");
  EXPECT_EQ(third["mean_pelvic_drop_deg"], "");

  // A period holds the sets started on its days only.
  v1::ExportRequest req;
  req.set_patient_id(anna_);
  req.set_format(v1::REPORT_FORMAT_SETS_CSV);
  req.set_from("2026-01-06");
  req.set_to("2026-01-08");
  const Export period = Run(req);
  ASSERT_TRUE(period.status.ok()) << period.status.error_message();
  rows = ParseCsv(period.data);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][2], absl::StrCat(anna_sets_[1]));
}

TEST_F(ReportExportTest, FhirBundlePassesStructuralChecks) {
  const Export e = PatientReport(anna_, v1::REPORT_FORMAT_FHIR);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.content_type, "application/fhir+json");
  const json bundle = json::parse(e.data);  // throws (fails) if not JSON
  EXPECT_EQ(bundle["resourceType"], "Bundle");
  EXPECT_EQ(bundle["type"], "collection");
  EXPECT_EQ(bundle["timestamp"], "2026-03-01T12:00:00Z");
  ASSERT_TRUE(bundle["entry"].is_array());
  ASSERT_EQ(bundle["entry"].size(), 4u);  // the patient and three sets

  std::set<std::string> full_urls;
  std::map<std::string, json> by_url;
  for (const json& entry : bundle["entry"]) {
    ASSERT_TRUE(entry.contains("fullUrl"));
    ASSERT_TRUE(entry.contains("resource"));
    const std::string url = entry["fullUrl"];
    EXPECT_EQ(url.rfind("urn:uuid:", 0), 0u) << url;
    EXPECT_EQ(url.size(), 9u + 36u) << url;
    EXPECT_TRUE(full_urls.insert(url).second) << "duplicate " << url;
    // A urn:uuid fullUrl and the resource's id agree.
    EXPECT_EQ(entry["resource"]["id"], url.substr(9));
    by_url[url] = entry["resource"];
  }
  const json& patient = bundle["entry"][0]["resource"];
  EXPECT_EQ(patient["resourceType"], "Patient");
  EXPECT_EQ(patient["name"][0]["text"], "Anna K.");
  bool has_record_number = false;
  for (const json& id : patient["identifier"]) {
    ASSERT_TRUE(id.contains("system") && id.contains("value"));
    if (id["value"] == "MRN-1") has_record_number = true;
  }
  EXPECT_TRUE(has_record_number);

  const std::string ucum = "http://unitsofmeasure.org";
  std::vector<json> observations;
  for (size_t i = 1; i < bundle["entry"].size(); ++i) {
    observations.push_back(bundle["entry"][i]["resource"]);
  }
  for (const json& o : observations) {
    EXPECT_EQ(o["resourceType"], "Observation");
    EXPECT_EQ(o["status"], "final");
    ASSERT_TRUE(o["code"]["coding"].is_array());
    EXPECT_EQ(o["code"]["coding"][0]["system"],
              "https://stephub.example/fhir/CodeSystem/stephub-observations");
    EXPECT_EQ(o["code"]["coding"][0]["code"], "lateral-step-down-set");
    EXPECT_EQ(o["category"][0]["coding"][0]["code"], "exam");
    // The subject resolves inside the bundle, to the Patient.
    const std::string subject = o["subject"]["reference"];
    ASSERT_TRUE(by_url.count(subject)) << subject;
    EXPECT_EQ(by_url[subject]["resourceType"], "Patient");
    ASSERT_TRUE(o.contains("effectiveDateTime"));
    for (const json& c : o["component"]) {
      ASSERT_TRUE(c["code"]["coding"][0].contains("code"));
      // Each component has a value or says why it has none.
      const int values =
          c.contains("valueQuantity") + c.contains("valueCodeableConcept") +
          c.contains("valueString") + c.contains("valueInteger") +
          c.contains("dataAbsentReason");
      EXPECT_EQ(values, 1) << c.dump();
      if (c.contains("valueQuantity")) {
        const json& q = c["valueQuantity"];
        EXPECT_TRUE(q["value"].is_number()) << q.dump();
        EXPECT_TRUE(q["unit"].is_string()) << q.dump();
        EXPECT_EQ(q["system"], ucum) << q.dump();
        EXPECT_TRUE(q["code"].is_string()) << q.dump();
      }
    }
  }
  // The first set's numbers, by component code.
  std::map<std::string, json> c;
  for (const json& component : observations[0]["component"]) {
    c[component["code"]["coding"][0]["code"]] = component;
  }
  EXPECT_EQ(observations[0]["effectiveDateTime"], "2026-01-05T09:00:00Z");
  EXPECT_EQ(c["pelvic-drop-mean"]["valueQuantity"]["value"], 2.75);
  EXPECT_EQ(c["pelvic-drop-mean"]["valueQuantity"]["code"], "deg");
  EXPECT_EQ(c["pelvic-drop-worst"]["valueQuantity"]["value"], 6.5);
  EXPECT_EQ(c["clean-percent"]["valueQuantity"]["value"], 75.0);
  EXPECT_EQ(c["clean-percent"]["valueQuantity"]["code"], "%");
  EXPECT_EQ(c["repetitions"]["valueQuantity"]["value"], 4);
  EXPECT_EQ(c["repetitions"]["valueQuantity"]["code"], "{repetitions}");
  EXPECT_EQ(c["clean-repetitions"]["valueQuantity"]["value"], 3);
  // Two good, one moderate, one poor: good is the most common.
  EXPECT_EQ(c["quality-category"]["valueCodeableConcept"]["coding"][0]["code"],
            "good");
  EXPECT_EQ(c["stance-side"]["valueCodeableConcept"]["coding"][0]["code"],
            "left");
  // The second set's pelvis was not seen: absent, with the reason.
  c.clear();
  for (const json& component : observations[1]["component"]) {
    c[component["code"]["coding"][0]["code"]] = component;
  }
  EXPECT_EQ(c["pelvic-drop-mean"]["dataAbsentReason"]["coding"][0]["code"],
            "not-performed");
  EXPECT_EQ(c["quality-category"]["dataAbsentReason"]["coding"][0]["code"],
            "not-performed");
  EXPECT_EQ(c["clean-percent"]["valueQuantity"]["value"], 0.0);
}

TEST_F(ReportExportTest, ClinicSummaryHasTheExpectedNumbers) {
  const Export e = ClinicReport("2026-01-05", "2026-02-15");
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.file_name, "clinic-summary-2026-01-05-to-2026-02-15.csv");
  const std::string expected = absl::StrCat(
      "section,name,value,unit\n", "report,kind,clinic_summary,\n",
      "report,from,2026-01-05,day\n", "report,to,2026-02-15,day\n",
      "report,time_zone,UTC,\n",
      "report,as_of,2026-02-15T23:59:59.999999Z,utc\n",
      "report,review_after_weeks,4,weeks\n", "\n",
      "section,patient_id,patient,external_ref,sessions,sessions_too_soon,"
      "first_session_day,weeks_since_start,weeks_below_target,"
      "weeks_on_target,weeks_above_target,weeks_in_progress,"
      "ready_to_progress,not_improving,left_pelvic_drop_trend_deg_per_week,"
      "right_pelvic_drop_trend_deg_per_week,review_reason\n",
      // Anna: week 0 on target, weeks 1-4 below, week 5 (holding the
      // period's end) still in progress.
      "patients,", anna_, ",Anna K.,MRN-1,3,0,2026-01-05,5,4,1,0,1,,,,,\n",
      "patients,", ben_, ",Ben L.,,18,0,2026-01-05,5,0,6,0,0,,left,0.50,,",
      "\"left: weekly mean pelvic drop +0.50 deg/week over 6 weeks with data, "
      "5 weeks after the first session\"\n",
      // Cara's 20 February session lies after the period.
      "patients,", cara_, ",Cara M.,,3,1,2026-02-09,0,0,1,0,0,left,,,,\n", "\n",
      "section,name,value,unit\n", "totals,patients_seen,3,patients\n",
      "totals,sessions,24,sessions\n",
      "totals,weeks_below_target,4,patient-weeks\n",
      "totals,weeks_on_target,8,patient-weeks\n",
      "totals,weeks_above_target,0,patient-weeks\n",
      "totals,weeks_in_progress,1,patient-weeks\n",
      "totals,patients_ready_to_progress,1,patients\n",
      "totals,patients_not_improving,1,patients\n", "\n",
      "section,station_id,observed_hours,connected_hours,uptime_percent,"
      "disconnections,longest_offline_hours,spool_loss_events\n",
      // 42 days = 1008 h, 6 of them off.
      "stations,bay-1,1008.00,1002.00,99.4,1,6.00,1\n",
      // From its first connection on 1 February: 360 h, the last 12 off.
      "stations,bay-2,360.00,348.00,96.7,1,12.00,0\n", "\n",
      "section,station_id,kind,start_utc,end_utc,duration_hours,detail\n",
      "data_gaps,bay-1,offline,2026-01-20T10:00:00Z,2026-01-20T16:00:00Z,6.00,"
      "\n",
      "data_gaps,bay-1,spool_loss,2026-01-20T16:00:01Z,,,batches 5 to 9 of "
      "boot b were lost on the station\n",
      "data_gaps,bay-2,offline,2026-02-15T12:00:00Z,,12.00,still offline at "
      "the end of the period\n");
  EXPECT_EQ(e.data, expected);
}

TEST_F(ReportExportTest, ClinicSummaryReviewThresholdIsConfigurable) {
  // Ben is 5 weeks in: asking for 6 weeks flags nobody.
  v1::ExportRequest req;
  req.set_kind(v1::REPORT_KIND_CLINIC);
  req.set_format(v1::REPORT_FORMAT_CSV);
  req.set_from("2026-01-05");
  req.set_to("2026-02-15");
  req.set_review_after_weeks(6);
  const Export e = Run(req);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_NE(e.data.find("report,review_after_weeks,6,weeks\n"),
            std::string::npos);
  EXPECT_NE(e.data.find("totals,patients_not_improving,0,patients\n"),
            std::string::npos);
  EXPECT_NE(e.data.find("totals,patients_seen,3,patients\n"),
            std::string::npos);
}

// The numbers ClinicSummaryHasTheExpectedNumbers checks in the CSV, as the
// PDF and HTML show them.
TEST_F(ReportExportTest, ClinicSummaryPdfHasTheCsvNumbersOnA4) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/pdftotext"))
      << "poppler-utils is needed: run tools/setup.sh --test";
  const Export e =
      ClinicReport("2026-01-05", "2026-02-15", v1::REPORT_FORMAT_PDF);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.content_type, "application/pdf");
  EXPECT_EQ(e.file_name, "clinic-summary-2026-01-05-to-2026-02-15.pdf");
  ASSERT_EQ(e.data.rfind("%PDF-", 0), 0u);
  const testing::PdfReadBack pdf = testing::ReadPdf(e.data);
  const std::string& t = pdf.text;
  EXPECT_THAT(t, HasSubstr("Clinic summary"));
  EXPECT_THAT(t, HasSubstr("Period 2026-01-05 to 2026-02-15 (days and times "
                           "in UTC)"));
  // As of the period's last minute; the line may wrap before the time.
  EXPECT_THAT(t,
              ContainsRegex("progress as it stood at 2026-02-15[ \n]+23:59"));
  EXPECT_THAT(t, HasSubstr("Patients seen: 3. Sessions: 24. Ready to "
                           "progress: 1. Flagged for review: 1."));
  // Patient-weeks: 4 below, 8 on, 0 above, 1 in progress, of 13.
  EXPECT_THAT(t, ContainsRegex("below target +4 +31%"));
  EXPECT_THAT(t, ContainsRegex("on target +8 +62%"));
  EXPECT_THAT(t, ContainsRegex("above target +0 +0%"));
  EXPECT_THAT(t, ContainsRegex("week still in progress +1 +8%"));
  EXPECT_THAT(t, ContainsRegex("Cara M\\. +3 +left"));
  EXPECT_THAT(t, HasSubstr("not improving 4 or more weeks"));
  EXPECT_THAT(t, ContainsRegex("Ben L\\. +5 +left: weekly mean pelvic drop "
                               "\\+0\\.50 deg/week"));
  EXPECT_THAT(t, ContainsRegex(
                     "Anna K\\. \\(MRN-1\\) +2026-01-05 +5 +3 +0 +4 +1 +0 +1"));
  EXPECT_THAT(t, ContainsRegex("Ben L\\. +2026-01-05 +5 +18 +0 +0 +6 +0 +0"));
  EXPECT_THAT(t, ContainsRegex("Cara M\\. +2026-02-09 +0 +3 +1 +0 +1 +0 +0"));
  EXPECT_THAT(t, Not(HasSubstr("Dan O.")));  // seen in December only
  EXPECT_THAT(
      t, ContainsRegex("bay-1 +1008\\.00 +1002\\.00 +99\\.4% +1 +6\\.00 +1"));
  EXPECT_THAT(
      t, ContainsRegex("bay-2 +360\\.00 +348\\.00 +96\\.7% +1 +12\\.00 +0"));
  EXPECT_THAT(t, ContainsRegex("bay-1 +offline +2026-01-20 10:00 +2026-01-20 "
                               "16:00 +6\\.00"));
  EXPECT_THAT(t, ContainsRegex("bay-1 +spool loss +2026-01-20 16:00 +batches"));
  EXPECT_THAT(t, ContainsRegex("bay-2 +offline +2026-02-15 12:00 +12\\.00 "
                               "+still offline"));

  EXPECT_THAT(pdf.info,
              ContainsRegex("Page size: +595.276 x 841.89 pts \\(A4\\)"));
  const int n = pdf.pages;
  EXPECT_GE(n, 1);
  EXPECT_THAT(t, HasSubstr(absl::StrCat("Page ", n, " of ", n)));
  EXPECT_EQ(pdf.pages_rendered, n);
  EXPECT_THAT(pdf.fonts, HasSubstr("DejaVuSans"));
  EXPECT_THAT(pdf.fonts, Not(ContainsRegex(" no +(yes|no) +(yes|no) +[0-9]+ "
                                           "+[0-9]+\n")))
      << "every font embedded:\n"
      << pdf.fonts;
}

TEST_F(ReportExportTest, ClinicSummaryHtmlHasTheCsvNumbers) {
  const Export e =
      ClinicReport("2026-01-05", "2026-02-15", v1::REPORT_FORMAT_HTML);
  ASSERT_TRUE(e.status.ok()) << e.status.error_message();
  EXPECT_EQ(e.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(e.file_name, "clinic-summary-2026-01-05-to-2026-02-15.html");
  const std::string& h = e.data;
  EXPECT_THAT(h, HasSubstr("Patients seen: 3. Sessions: 24. Ready to "
                           "progress: 1. Flagged for review: 1."));
  EXPECT_THAT(h, HasSubstr("<td>below target</td><td>4</td><td>31%</td>"));
  EXPECT_THAT(h, HasSubstr("<td>on target</td><td>8</td><td>62%</td>"));
  EXPECT_THAT(h, HasSubstr("<td>week still in progress</td><td>1</td>"));
  EXPECT_THAT(h, HasSubstr("<td>Cara M.</td><td>3</td><td>left</td>"));
  EXPECT_THAT(h, HasSubstr("<td>Ben L.</td><td>5</td><td>left: weekly mean "
                           "pelvic drop +0.50 deg/week over 6 weeks with "
                           "data, 5 weeks after the first session</td>"));
  EXPECT_THAT(h, HasSubstr("<td>Anna K. (MRN-1)</td><td>2026-01-05</td>"
                           "<td>5</td><td>3</td><td>0</td><td>4</td><td>1</td>"
                           "<td>0</td><td>1</td>"));
  EXPECT_THAT(h, HasSubstr("<td>bay-1</td><td>1008.00</td><td>1002.00</td>"
                           "<td>99.4%</td><td>1</td><td>6.00</td><td>1</td>"));
  EXPECT_THAT(h, HasSubstr("<td>bay-2</td><td>360.00</td><td>348.00</td>"
                           "<td>96.7%</td><td>1</td><td>12.00</td><td>0</td>"));
  EXPECT_THAT(h, HasSubstr("<td>bay-2</td><td>offline</td><td>2026-02-15 "
                           "12:00</td><td></td><td>12.00</td><td>still "
                           "offline at the end of the period</td>"));
  EXPECT_THAT(h, HasSubstr("<svg"));  // the adherence chart
  EXPECT_THAT(h, Not(HasSubstr("Dan O.")));
}

TEST_F(ReportExportTest, LargeReportsComeInSeveralChunks) {
  // Ben's 18 observations make a bundle over one 32 KiB chunk: it arrives
  // in several, and whole.
  const Export one = PatientReport(ben_, v1::REPORT_FORMAT_FHIR);
  ASSERT_TRUE(one.status.ok());
  EXPECT_GT(one.data.size(), 32u * 1024);
  EXPECT_GT(one.chunks, 1);
  EXPECT_FALSE(json::parse(one.data, nullptr, false).is_discarded());
}

TEST_F(ReportExportTest, BadRequestsGetClearStatuses) {
  auto expect = [&](const v1::ExportRequest& req, grpc::StatusCode code,
                    const std::string& words) {
    const Export e = Run(req);
    EXPECT_EQ(e.status.error_code(), code) << e.status.error_message();
    EXPECT_NE(e.status.error_message().find(words), std::string::npos)
        << e.status.error_message();
    EXPECT_EQ(e.data, "");  // refused before a byte is written
  };
  v1::ExportRequest req;
  req.set_patient_id(9999);
  req.set_format(v1::REPORT_FORMAT_SETS_CSV);
  expect(req, grpc::StatusCode::NOT_FOUND, "no patient 9999");

  req.set_patient_id(anna_);
  req.set_format(v1::REPORT_FORMAT_UNSPECIFIED);
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "format is required");
  req.set_format(static_cast<v1::ReportFormat>(99));
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "format 99");

  req.set_format(v1::REPORT_FORMAT_CSV);
  req.set_patient_id(0);
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "patient_id");
  req.set_format(v1::REPORT_FORMAT_PDF);
  req.set_patient_id(9999);
  expect(req, grpc::StatusCode::NOT_FOUND, "no patient 9999");

  v1::ExportRequest clinic;
  clinic.set_kind(v1::REPORT_KIND_CLINIC);
  clinic.set_format(v1::REPORT_FORMAT_CSV);
  clinic.set_from("2026-02-15");
  clinic.set_to("2026-01-05");
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT,
         "from 2026-02-15 is after to 2026-01-05");
  clinic.set_from("2026-02-30");
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT,
         "from must be a clinic day YYYY-MM-DD, not \"2026-02-30\"");
  clinic.set_from("2026-1-5");
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "2026-1-5");
  clinic.set_from("2026-01-05");
  clinic.clear_to();
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "needs its period");
  clinic.set_to("2026-02-15");
  // FHIR and the sets CSV describe one patient: no clinic form of them.
  clinic.set_format(v1::REPORT_FORMAT_FHIR);
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT,
         "FHIR describes one patient's record: a clinic summary comes as "
         "REPORT_FORMAT_CSV, REPORT_FORMAT_PDF or REPORT_FORMAT_HTML");
  clinic.set_format(v1::REPORT_FORMAT_SETS_CSV);
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "sets CSV");
  clinic.set_format(v1::REPORT_FORMAT_CSV);
  clinic.set_patient_id(anna_);
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "patient_id");
  clinic.clear_patient_id();
  clinic.set_review_after_weeks(400);
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "review_after_weeks");
  clinic.clear_review_after_weeks();
  clinic.set_kind(static_cast<v1::ReportKind>(7));
  expect(clinic, grpc::StatusCode::INVALID_ARGUMENT, "kind 7");
}

TEST_F(ReportExportTest, CliWritesWholeReportsAndRefusesBadUsage) {
  auto cli = [&](std::vector<std::string> args, std::string* out = nullptr,
                 std::string* err = nullptr) {
    args.insert(args.begin(), {"--hub", address_, "--ca_file",
                               testing::TestPki::Get().ca_file()});
    std::ostringstream o, e;
    const int code = cli::Run(args, o, e);
    if (out) *out = o.str();
    if (err) *err = e.str();
    return code;
  };
  auto slurp = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string dir = dir_.path();
  const std::string id = absl::StrCat(anna_);

  ASSERT_EQ(cli({"report", "patient", id, "--format", "sets-csv", "-o",
                 dir + "/sets.csv"}),
            0);
  EXPECT_EQ(slurp(dir + "/sets.csv"),
            PatientReport(anna_, v1::REPORT_FORMAT_SETS_CSV).data);
  EXPECT_FALSE(std::filesystem::exists(dir + "/sets.csv.partial"));

  std::string out;
  ASSERT_EQ(cli({"report", "patient", id, "--format", "fhir"}, &out), 0);
  EXPECT_EQ(json::parse(out)["resourceType"], "Bundle");

  // The form from before `report patient`, as tools/demo.sh uses it.
  ASSERT_EQ(cli({"report", id, "--format", "csv", "-o", dir + "/reps.csv"}), 0);
  EXPECT_EQ(slurp(dir + "/reps.csv"),
            PatientReport(anna_, v1::REPORT_FORMAT_CSV).data);

  ASSERT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-02-15", "--format", "csv", "-o", dir + "/clinic.csv"}),
            0);
  EXPECT_EQ(slurp(dir + "/clinic.csv"),
            ClinicReport("2026-01-05", "2026-02-15").data);

  // The clinic summary as PDF and HTML: what the hub sends, whole.
  ASSERT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-02-15", "--format", "pdf", "-o", dir + "/clinic.pdf"}),
            0);
  EXPECT_EQ(slurp(dir + "/clinic.pdf").rfind("%PDF-", 0), 0u);
  EXPECT_THAT(testing::ReadPdf(slurp(dir + "/clinic.pdf")).text,
              ContainsRegex("bay-1 +1008\\.00 +1002\\.00 +99\\.4%"));
  ASSERT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-02-15", "--format", "html"},
                &out),
            0);
  EXPECT_EQ(
      out,
      ClinicReport("2026-01-05", "2026-02-15", v1::REPORT_FORMAT_HTML).data);

  std::string err;
  EXPECT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-02-15", "--format", "pdf"},
                nullptr, &err),
            2);
  EXPECT_NE(err.find("needs -o FILE"), std::string::npos) << err;
  EXPECT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--format", "csv"},
                nullptr, &err),
            2);
  EXPECT_NE(err.find("--to"), std::string::npos) << err;
  EXPECT_EQ(cli({"report", "patient", id, "--format", "pdfx"}, nullptr, &err),
            2);
  EXPECT_NE(err.find("csv, sets-csv, fhir, pdf or html"), std::string::npos)
      << err;
  EXPECT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-13-01", "--format", "csv"},
                nullptr, &err),
            2);
  EXPECT_EQ(cli({"report", "clinic", "--from", "2026-01-05", "--to",
                 "2026-02-15", "--format", "fhir"},
                nullptr, &err),
            2);
  EXPECT_NE(err.find("FHIR bundles and sets CSVs describe one patient"),
            std::string::npos)
      << err;
  // The hub refuses: exit 1, and no FILE (nor its .partial) is left.
  EXPECT_EQ(cli({"report", "clinic", "--from", "2026-02-15", "--to",
                 "2026-01-05", "--format", "csv", "-o", dir + "/bad.csv"},
                nullptr, &err),
            1);
  EXPECT_NE(err.find("is after"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.csv"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.csv.partial"));
  EXPECT_EQ(cli({"report", "patient", "9999", "--format", "csv", "-o",
                 dir + "/none.csv"},
                nullptr, &err),
            1);
  EXPECT_FALSE(std::filesystem::exists(dir + "/none.csv"));
}

}  // namespace
}  // namespace stephub
