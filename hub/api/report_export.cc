// Reports.Export's CSV and FHIR formats and the clinic summary; see
// report_export.h and docs/REPORTS.md.
#include "hub/api/report_export.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "hub/api/progress_report_export.h"
#include "hub/api/progress_view.h"
#include "hub/progress/progress.h"
#include "hub/reports/clinic_summary.h"

namespace stephub::api {

void ReportWriter::Start(const std::string& content_type,
                         const std::string& file_name) {
  chunk_.set_content_type(content_type);
  chunk_.set_file_name(file_name);
}

bool ReportWriter::Append(absl::string_view text) {
  buffer_.append(text.data(), text.size());
  return buffer_.size() < chunk_bytes_ || Flush();
}

bool ReportWriter::Finish() { return buffer_.empty() || Flush(); }

bool ReportWriter::Flush() {
  chunk_.set_data(std::move(buffer_));
  buffer_.clear();
  const bool ok = send_(chunk_);
  chunk_.Clear();
  return ok;
}

absl::Status WriteWhole(const std::string& content_type,
                        const std::string& file_name, absl::string_view bytes,
                        ReportWriter& out) {
  out.Start(content_type, file_name);
  for (size_t at = 0; at < bytes.size(); at += out.chunk_bytes()) {
    if (!out.Append(bytes.substr(at, out.chunk_bytes()))) {
      return absl::CancelledError("client went away");
    }
  }
  return out.Finish() ? absl::OkStatus()
                      : absl::CancelledError("client went away");
}

namespace {

using google::protobuf::util::TimeUtil;
using reports::CsvField;

// Why an export stopped part way: the client is gone.
absl::Status ClientGone() { return absl::CancelledError("client went away"); }

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

std::string Rfc3339(absl::Time t) {
  return TimeUtil::ToString(
      TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t)));
}

const char* SideName(v1::StanceSide side) {
  return side == v1::STANCE_SIDE_RIGHT ? "right" : "left";
}

const char* VerdictName(v1::Verdict verdict) {
  switch (verdict) {
    case v1::VERDICT_CLEAN:
      return "clean";
    case v1::VERDICT_PELVIC_DROP:
      return "pelvic_drop";
    case v1::VERDICT_PELVIC_HIKE:
      return "pelvic_hike";
    case v1::VERDICT_NOT_ASSESSED:
      return "not_assessed";
    default:
      return "";
  }
}

const char* CategoryName(v1::QualityCategory category) {
  switch (category) {
    case v1::QUALITY_CATEGORY_GOOD:
      return "good";
    case v1::QUALITY_CATEGORY_MODERATE:
      return "moderate";
    case v1::QUALITY_CATEGORY_POOR:
      return "poor";
    default:
      return "";
  }
}

// The other sensors' metrics and the quality scale; empty where the
// station could not assess them.
std::string MetricsCsv(const v1::Repetition& rep) {
  const v1::RepetitionMetrics& m = rep.metrics();
  // A FormatSpec, not a char*: clang checks the format at each call.
  auto number = [](bool has, double value,
                   const absl::FormatSpec<double>& format) {
    return has ? absl::StrFormat(format, value) : std::string();
  };
  const bool scored =
      rep.quality().category() != v1::QUALITY_CATEGORY_UNSPECIFIED;
  return absl::StrCat(
      number(m.has_peak_trunk_lean_deg(), m.peak_trunk_lean_deg(), "%.2f"), ",",
      number(m.has_knee_flexion_deg(), m.knee_flexion_deg(), "%.1f"), ",",
      number(m.has_knee_valgus_deg(), m.knee_valgus_deg(), "%.2f"), ",",
      number(m.has_cop_ml_range_mm(), m.cop_ml_range_mm(), "%.1f"), ",",
      number(m.has_free_foot_load_fraction(), m.free_foot_load_fraction(),
             "%.3f"),
      ",", scored ? absl::StrCat(rep.quality().total()) : std::string(), ",",
      CategoryName(rep.quality().category()), ",",
      CsvField(absl::StrJoin(rep.problems(), "; ")));
}

// Columns are documented in docs/REPORTS.md. Kept byte for byte as they
// were before other formats existed: spreadsheets and scripts read them.
constexpr char kRepetitionCsvHeader[] =
    "patient_id,patient,set_id,station_id,stance_side,exercise,load,"
    "set_started_utc,rep,start_us,deepest_us,end_us,peak_pelvic_drop_deg,"
    "verdict,clean,scoring_version,peak_trunk_lean_deg,knee_flexion_deg,"
    "knee_valgus_deg,cop_ml_range_mm,free_foot_load_fraction,quality_total,"
    "quality_category,problems\n";

constexpr char kSetCsvHeader[] =
    "patient_id,patient,set_id,day,set_started_utc,set_ended_utc,station_id,"
    "stance_side,exercise,load,level,repetitions,clean_repetitions,"
    "clean_percent,mean_pelvic_drop_deg,worst_pelvic_drop_deg,quality_good,"
    "quality_moderate,quality_poor,quality_not_assessed,scoring_version\n";

// Clinic days, both ends included; an end left open is unbounded.
struct DayRange {
  std::optional<absl::CivilDay> from, to;
  bool Holds(absl::CivilDay day) const {
    return (!from || day >= *from) && (!to || day <= *to);
  }
  bool Overlaps(absl::CivilDay first, absl::CivilDay last) const {
    return (!from || last >= *from) && (!to || first <= *to);
  }
};

absl::StatusOr<std::optional<absl::CivilDay>> ParseDay(const std::string& text,
                                                       const char* field) {
  if (text.empty()) return std::optional<absl::CivilDay>();
  absl::CivilDay day;
  // ParseCivilTime also takes "2026-1-5"; a report names its days exactly.
  if (text.size() != 10 || !absl::ParseCivilTime(text, &day)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be a clinic day YYYY-MM-DD, not \"", text, "\""));
  }
  return std::optional<absl::CivilDay>(day);
}

absl::StatusOr<DayRange> ParseRange(const v1::ExportRequest& request) {
  DayRange range;
  auto from = ParseDay(request.from(), "from");
  if (!from.ok()) return from.status();
  auto to = ParseDay(request.to(), "to");
  if (!to.ok()) return to.status();
  range.from = *from;
  range.to = *to;
  if (range.from && range.to && *range.from > *range.to) {
    return absl::InvalidArgumentError(
        absl::StrCat("from ", request.from(), " is after to ", request.to(),
                     ": the period's first day comes first"));
  }
  return range;
}

std::string RangeSuffix(const v1::ExportRequest& request) {
  if (request.from().empty() && request.to().empty()) return "";
  return absl::StrCat("-", request.from().empty() ? "start" : request.from(),
                      "-to-", request.to().empty() ? "now" : request.to());
}

// A set with its current results and what hub/progress makes of them.
struct ScoredSet {
  const v1::ExerciseSet* set;
  std::vector<v1::Repetition> repetitions;
  progress::SetSummary summary;
  uint32_t pelvis_assessed = 0;  // repetitions whose pelvis was measured
  absl::CivilDay day;
};

// Visits the patient's sets started on days of `range`, oldest first, each
// with its repetitions (one set in memory at a time).
absl::Status ForEachSet(const ExportEnvironment& env, int64_t patient_id,
                        const DayRange& range,
                        const std::function<bool(const ScoredSet&)>& visit) {
  auto sets = env.store->SetsOfPatient(patient_id);
  if (!sets.ok()) return sets.status();
  for (const v1::ExerciseSet& set : *sets) {
    if (env.cancelled()) return ClientGone();
    const absl::CivilDay day =
        absl::ToCivilDay(FromProto(set.started_at()), env.zone);
    if (!range.Holds(day)) continue;
    auto reps = env.store->RepetitionsOfSet(set.set_id());
    if (!reps.ok()) return reps.status();
    ScoredSet scored{&set, std::move(*reps), {}, 0, day};
    std::vector<progress::RepetitionOutcome> outcomes;
    for (const v1::Repetition& rep : scored.repetitions) {
      outcomes.push_back(OutcomeOf(rep));
      scored.pelvis_assessed += outcomes.back().pelvis_assessed;
    }
    scored.summary = progress::SummariseSet(outcomes);
    if (!visit(scored)) return ClientGone();
  }
  return absl::OkStatus();
}

absl::Status RepetitionsCsv(const v1::Patient& patient, const DayRange& range,
                            const ExportEnvironment& env, ReportWriter& out) {
  if (!out.Append(kRepetitionCsvHeader)) return ClientGone();
  return ForEachSet(
      env, patient.patient_id(), range, [&](const ScoredSet& scored) {
        const v1::ExerciseSet& set = *scored.set;
        const std::string started = TimeUtil::ToString(set.started_at());
        for (const v1::Repetition& rep : scored.repetitions) {
          const bool assessed = rep.verdict() != v1::VERDICT_NOT_ASSESSED;
          const std::string row = absl::StrCat(
              patient.patient_id(), ",", CsvField(patient.display_name()), ",",
              set.set_id(), ",", CsvField(set.station_id()), ",",
              SideName(set.stance_side()), ",", CsvField(set.exercise()), ",",
              CsvField(set.load()), ",", started, ",", rep.number(), ",",
              rep.start_us(), ",", rep.deepest_us(), ",", rep.end_us(), ",",
              // Empty where the pelvis was not seen (no usable sacral IMU).
              assessed ? absl::StrFormat("%.2f", rep.peak_pelvic_drop_deg())
                       : "",
              ",", VerdictName(rep.verdict()), ",",
              assessed ? (rep.clean() ? "1" : "0") : "", ",",
              CsvField(rep.scoring_version()), ",", MetricsCsv(rep), "\n");
          if (!out.Append(row)) return false;
        }
        return true;
      });
}

std::string ScoringVersionOf(const ScoredSet& scored) {
  if (!scored.set->scoring_version().empty()) {
    return scored.set->scoring_version();
  }
  // Sets from before re-scoring existed carry it on their results only.
  return scored.repetitions.empty() ? ""
                                    : scored.repetitions[0].scoring_version();
}

absl::Status SetsCsv(const v1::Patient& patient, const DayRange& range,
                     const ExportEnvironment& env, ReportWriter& out) {
  if (!out.Append(kSetCsvHeader)) return ClientGone();
  return ForEachSet(
      env, patient.patient_id(), range, [&](const ScoredSet& scored) {
        const v1::ExerciseSet& set = *scored.set;
        const progress::SetSummary& s = scored.summary;
        // No repetitions: no share to state; no pelvis seen: no drop.
        const bool any = s.repetitions > 0;
        const bool seen = scored.pelvis_assessed > 0;
        const std::string row = absl::StrCat(
            patient.patient_id(), ",", CsvField(patient.display_name()), ",",
            set.set_id(), ",", absl::FormatCivilTime(scored.day), ",",
            TimeUtil::ToString(set.started_at()), ",",
            set.has_ended_at() ? TimeUtil::ToString(set.ended_at()) : "", ",",
            CsvField(set.station_id()), ",", SideName(set.stance_side()), ",",
            CsvField(set.exercise()), ",", CsvField(set.load()), ",",
            set.level(), ",", s.repetitions, ",", s.clean_repetitions, ",",
            any ? absl::StrFormat("%.1f", s.clean_percent) : "", ",",
            seen ? absl::StrFormat("%.2f", s.mean_pelvic_drop_deg) : "", ",",
            seen ? absl::StrFormat("%.2f", s.worst_pelvic_drop_deg) : "", ",",
            s.good, ",", s.moderate, ",", s.poor, ",", s.not_assessed, ",",
            CsvField(ScoringVersionOf(scored)), "\n");
        return out.Append(row);
      });
}

// ---------------------------------------------------------------------------
// FHIR R4. Each resource is built as an nlohmann json value and serialised
// on its own: nlohmann_json is already a dependency, escapes strings
// correctly and writes numbers in their shortest exact form, while
// google::protobuf::Struct would turn every repetition count into a double
// ("12.0" is not what a reader expects) and needs a JSON printer round trip.
// The Bundle around the entries is written by hand, entry by entry, so that
// a long history streams instead of sitting in one json tree.

// Keys in the order written, resourceType first, as FHIR's own examples
// read (plain nlohmann::json would sort them).
using Json = nlohmann::ordered_json;

constexpr char kObservationCodes[] =
    "https://stephub.example/fhir/CodeSystem/stephub-observations";
constexpr char kQualityCodes[] =
    "https://stephub.example/fhir/CodeSystem/stephub-quality-category";
constexpr char kSideCodes[] =
    "https://stephub.example/fhir/CodeSystem/stephub-stance-side";
constexpr char kPatientIds[] =
    "https://stephub.example/fhir/NamingSystem/stephub-patient-id";
constexpr char kSetIds[] =
    "https://stephub.example/fhir/NamingSystem/stephub-set-id";
constexpr char kClinicRecordNumbers[] =
    "https://stephub.example/fhir/NamingSystem/clinic-record-number";
constexpr char kUcum[] = "http://unitsofmeasure.org";
constexpr char kDataAbsent[] =
    "http://terminology.hl7.org/CodeSystem/data-absent-reason";

// A fresh random (version 4) UUID per resource and export: a urn:uuid
// fullUrl must be unique wherever the bundle goes, and the hub's own ids
// (in the identifiers) are only unique inside this clinic.
std::string NewUuid(absl::BitGen& gen) {
  uint64_t hi = absl::Uniform<uint64_t>(gen);
  uint64_t lo = absl::Uniform<uint64_t>(gen);
  hi = (hi & ~uint64_t{0xF000}) | uint64_t{0x4000};        // version 4
  lo = (lo & ~(uint64_t{3} << 62)) | (uint64_t{2} << 62);  // RFC 4122
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", hi >> 32,
                         (hi >> 16) & 0xFFFF, hi & 0xFFFF, lo >> 48,
                         lo & 0xFFFFFFFFFFFFull);
}

Json Coding(const char* system, const std::string& code,
            const std::string& display) {
  return {{"system", system}, {"code", code}, {"display", display}};
}

Json Concept(const char* system, const std::string& code,
             const std::string& display) {
  return {{"coding", Json::array({Coding(system, code, display)})},
          {"text", display}};
}

// Two decimals are what the stations measure to; more would be noise.
double Rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

// `value` as json: counts stay integers ("12", not "12.0").
Json Quantity(Json value, const std::string& unit, const std::string& ucum) {
  return {{"value", std::move(value)},
          {"unit", unit},
          {"system", kUcum},
          {"code", ucum}};
}

Json Component(const std::string& code, const std::string& display) {
  return {{"code", Concept(kObservationCodes, code, display)}};
}

Json Absent(const std::string& reason, const std::string& display) {
  return Concept(kDataAbsent, reason, display);
}

Json PatientResource(const v1::Patient& patient, const std::string& uuid) {
  Json identifiers =
      Json::array({{{"system", kPatientIds},
                    {"value", absl::StrCat(patient.patient_id())}}});
  if (!patient.external_ref().empty()) {
    identifiers.push_back(
        {{"use", "usual"},
         {"type", Concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                          "Medical record number")},
         {"system", kClinicRecordNumbers},
         {"value", patient.external_ref()}});
  }
  // The hub keeps one display name ("Anna K."), not family and given names.
  return {{"resourceType", "Patient"},
          {"id", uuid},
          {"identifier", identifiers},
          {"name", Json::array({{{"text", patient.display_name()}}})}};
}

// The set's category: the one most of its assessed repetitions fell in,
// the worse one on a tie (a referrer should not read a set as better than
// it was); nullopt when no repetition was assessed.
std::optional<v1::QualityCategory> SetCategory(const progress::SetSummary& s) {
  if (s.good + s.moderate + s.poor == 0) return std::nullopt;
  if (s.poor >= s.moderate && s.poor >= s.good) {
    return v1::QUALITY_CATEGORY_POOR;
  }
  if (s.moderate >= s.good) return v1::QUALITY_CATEGORY_MODERATE;
  return v1::QUALITY_CATEGORY_GOOD;
}

Json ObservationResource(const ScoredSet& scored, const std::string& uuid,
                         const std::string& patient_url,
                         const std::string& patient_name) {
  const v1::ExerciseSet& set = *scored.set;
  const progress::SetSummary& s = scored.summary;
  const std::string side = SideName(set.stance_side());
  Json components = Json::array();
  auto count = [&](const std::string& code, const std::string& display,
                   uint32_t n) {
    Json c = Component(code, display);
    c["valueQuantity"] = Quantity(n, "repetitions", "{repetitions}");
    components.push_back(std::move(c));
  };
  count("repetitions", "Repetitions", s.repetitions);
  count("clean-repetitions", "Repetitions without Trendelenburg compensation",
        s.clean_repetitions);
  {
    Json c = Component("clean-percent", "Clean repetitions");
    if (s.repetitions > 0) {
      c["valueQuantity"] = Quantity(Rounded(s.clean_percent, 1), "%", "%");
    } else {
      c["dataAbsentReason"] = Absent("not-applicable", "Not Applicable");
    }
    components.push_back(std::move(c));
  }
  for (const auto& [code, display, value] :
       {std::tuple("pelvic-drop-mean", "Mean peak pelvic drop",
                   s.mean_pelvic_drop_deg),
        std::tuple("pelvic-drop-worst", "Worst peak pelvic drop",
                   s.worst_pelvic_drop_deg)}) {
    Json c = Component(code, display);
    if (scored.pelvis_assessed > 0) {
      c["valueQuantity"] = Quantity(Rounded(value, 2), "deg", "deg");
    } else {
      // No usable sacral IMU: the pelvis was not measured (never zero).
      c["dataAbsentReason"] = Absent("not-performed", "Not Performed");
    }
    components.push_back(std::move(c));
  }
  {
    Json c = Component("quality-category", "Quality category");
    if (auto category = SetCategory(s)) {
      const std::string name = CategoryName(*category);
      c["valueCodeableConcept"] = Concept(kQualityCodes, name, name);
    } else {
      c["dataAbsentReason"] = Absent("not-performed", "Not Performed");
    }
    components.push_back(std::move(c));
  }
  count("quality-good", "Repetitions of good quality (0-1 points)", s.good);
  count("quality-moderate", "Repetitions of moderate quality (2-3 points)",
        s.moderate);
  count("quality-poor", "Repetitions of poor quality (4+ points)", s.poor);
  {
    Json c = Component("stance-side", "Stance side");
    c["valueCodeableConcept"] = Concept(kSideCodes, side, side);
    components.push_back(std::move(c));
  }
  {
    Json c = Component("load", "Load");
    c["valueString"] = set.load();
    components.push_back(std::move(c));
  }
  {
    Json c = Component("programme-level", "Programme level");
    c["valueInteger"] = set.level();
    components.push_back(std::move(c));
  }
  const std::string exercise = set.exercise() == "lateral_step_down"
                                   ? "Lateral step-down"
                                   : set.exercise();
  Json observation = {
      {"resourceType", "Observation"},
      {"id", uuid},
      {"identifier", Json::array({{{"system", kSetIds},
                                   {"value", absl::StrCat(set.set_id())}}})},
      // An active set's numbers may still change.
      {"status", set.has_ended_at() ? "final" : "preliminary"},
      {"category",
       Json::array({Concept(
           "http://terminology.hl7.org/CodeSystem/observation-category", "exam",
           "Exam")})},
      {"code",
       {{"coding",
         Json::array({Coding(kObservationCodes, "lateral-step-down-set",
                             "Lateral step-down set")})},
        {"text", absl::StrCat(exercise, " set, ", side, " stance leg")}}},
      {"subject", {{"reference", patient_url}, {"display", patient_name}}},
      {"effectiveDateTime", TimeUtil::ToString(set.started_at())},
      {"note",
       Json::array(
           {{{"text", absl::StrCat("station ", set.station_id(), "; scoring ",
                                   ScoringVersionOf(scored))}}})},
      {"component", std::move(components)}};
  return observation;
}

absl::Status FhirBundle(const v1::Patient& patient, const DayRange& range,
                        const ExportEnvironment& env, ReportWriter& out) {
  absl::BitGen gen;
  const std::string patient_uuid = NewUuid(gen);
  const std::string patient_url = absl::StrCat("urn:uuid:", patient_uuid);
  const Json head = {{"resourceType", "Bundle"},
                     {"type", "collection"},
                     {"timestamp", Rfc3339(env.now)}};
  std::string text = head.dump();
  text.pop_back();  // the closing brace: the entries follow
  absl::StrAppend(&text, ",\"entry\":[\n",
                  Json({{"fullUrl", patient_url},
                        {"resource", PatientResource(patient, patient_uuid)}})
                      .dump());
  if (!out.Append(text)) return ClientGone();
  auto s = ForEachSet(
      env, patient.patient_id(), range, [&](const ScoredSet& scored) {
        const std::string uuid = NewUuid(gen);
        const Json entry = {
            {"fullUrl", absl::StrCat("urn:uuid:", uuid)},
            {"resource", ObservationResource(scored, uuid, patient_url,
                                             patient.display_name())}};
        return out.Append(",\n") && out.Append(entry.dump());
      });
  if (!s.ok()) return s;
  if (!out.Append("\n]}\n")) return ClientGone();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The clinic summary.

void AddWeek(v1::Adherence a, reports::AdherenceWeeks& weeks) {
  switch (a) {
    case v1::ADHERENCE_BELOW_TARGET:
      ++weeks.below;
      break;
    case v1::ADHERENCE_ON_TARGET:
      ++weeks.on;
      break;
    case v1::ADHERENCE_ABOVE_TARGET:
      ++weeks.above;
      break;
    default:
      ++weeks.in_progress;
      break;
  }
}

// A station's connection over the period, from the clinic's log.
struct StationTimeline {
  absl::Time known_from;  // the period's start, or the station's first event
  bool connected = false;
  absl::Time since;  // when the current state began (clamped to the period)
  absl::Duration connected_total;
  int disconnections = 0;
  absl::Duration longest_offline;
  int spool_losses = 0;
};

using reports::DataGap;

constexpr char kConnected[] = "station_connected";
constexpr char kDisconnected[] = "station_disconnected";
constexpr char kSpoolLoss[] = "station_spool_loss";

// Pages through the log: no store lock is held while `visit` runs.
absl::Status ForEachEvent(
    const ExportEnvironment& env, absl::Time from, absl::Time until,
    const std::vector<std::string>& kinds,
    const std::function<bool(const store::EventRecord&)>& visit) {
  constexpr int kPage = 512;
  store::ClinicStore::EventCursor after;
  while (true) {
    if (env.cancelled()) return ClientGone();
    auto page = env.store->EventsPage(from, until, kinds, after, kPage);
    if (!page.ok()) return page.status();
    for (const store::EventRecord& event : *page) {
      if (!visit(event)) return ClientGone();
    }
    if (page->size() < static_cast<size_t>(kPage)) return absl::OkStatus();
    after = {page->back().time, page->back().event_id};
  }
}

// Each station's state at `start`: connected or not, by its last
// connect/disconnect event before it.
absl::StatusOr<std::map<std::string, StationTimeline>> StationsAt(
    const ExportEnvironment& env, absl::Time start) {
  std::map<std::string, StationTimeline> stations;
  auto s = ForEachEvent(env, absl::InfinitePast(), start,
                        {kConnected, kDisconnected},
                        [&](const store::EventRecord& e) {
                          StationTimeline& t = stations[e.station_id];
                          t.known_from = start;
                          t.since = start;
                          t.connected = e.kind == kConnected;
                          return true;
                        });
  if (!s.ok()) return s;
  return stations;
}

// Runs the stations' timelines over [start, end), reporting each offline
// stretch and spool loss to `gap` as it closes.
absl::Status WalkStations(const ExportEnvironment& env, absl::Time start,
                          absl::Time end,
                          std::map<std::string, StationTimeline>& stations,
                          const std::function<bool(const DataGap&)>& gap) {
  auto offline = [&](const std::string& id, StationTimeline& t,
                     absl::Time until, bool closed) {
    const absl::Duration d = until - t.since;
    t.longest_offline = std::max(t.longest_offline, d);
    return gap({id, "offline", t.since,
                closed ? std::optional<absl::Time>(until) : std::nullopt, d,
                closed ? "" : "still offline at the end of the period"});
  };
  auto s = ForEachEvent(
      env, start, end, {kConnected, kDisconnected, kSpoolLoss},
      [&](const store::EventRecord& e) {
        auto [it, first] = stations.try_emplace(e.station_id);
        StationTimeline& t = it->second;
        if (first) {  // a station new in the period starts with its event
          t.known_from = e.time;
          t.since = e.time;
        }
        if (e.kind == kSpoolLoss) {
          ++t.spool_losses;
          return gap({e.station_id, "spool_loss", e.time, std::nullopt,
                      std::nullopt, e.detail});
        }
        const bool now_connected = e.kind == kConnected;
        // A second connect without a disconnect between: the old stream
        // ended unlogged (a hub restart); count it connected throughout.
        if (now_connected == t.connected) return true;
        bool ok = true;
        if (now_connected) {
          if (!first) ok = offline(e.station_id, t, e.time, true);
        } else {
          t.connected_total += e.time - t.since;
          ++t.disconnections;
        }
        t.connected = now_connected;
        t.since = e.time;
        return ok;
      });
  if (!s.ok()) return s;
  for (auto& [id, t] : stations) {
    if (t.connected) {
      t.connected_total += end - t.since;
      t.since = end;
    } else if (end > t.since) {
      if (!offline(id, t, end, false)) return ClientGone();
    }
  }
  return absl::OkStatus();
}

// The clinic summary's model; nothing is written, so that a failure
// leaves the client with a status and no part of a report.
absl::StatusOr<reports::ClinicSummary> BuildClinicSummary(
    const v1::ExportRequest& request, const DayRange& range,
    int review_after_weeks, const ExportEnvironment& env) {
  const absl::Time start = absl::FromCivil(*range.from, env.zone);
  const absl::Time range_end = absl::FromCivil(*range.to + 1, env.zone);
  // Progress as it stood at the period's end (or now, for a period not
  // over yet), so that a past period's summary reads the same whenever
  // it is exported.
  const absl::Time as_of = std::min(env.now, range_end - absl::Microseconds(1));
  const absl::Time period_end = std::min(env.now, range_end);

  reports::ClinicSummary summary;
  summary.from = request.from();
  summary.to = request.to();
  summary.time_zone = env.zone.name();
  summary.as_of = as_of;
  summary.review_after_weeks = review_after_weeks;

  auto patients = env.store->ListPatients();
  if (!patients.ok()) return patients.status();
  for (const v1::Patient& patient : *patients) {
    if (env.cancelled()) return ClientGone();
    // One patient's history at a time.
    auto p =
        PatientProgressOf(*env.store, patient.patient_id(), as_of, env.zone);
    if (!p.ok()) return p.status();
    reports::PatientSeen row;
    for (const v1::SessionSummary& session : p->sessions()) {
      absl::CivilDay day;
      if (!absl::ParseCivilTime(session.day(), &day) || !range.Holds(day)) {
        continue;
      }
      ++row.sessions;
      row.sessions_too_soon += session.too_soon();
    }
    if (row.sessions == 0) continue;
    row.patient_id = patient.patient_id();
    row.patient = patient.display_name();
    row.external_ref = patient.external_ref();
    row.first_session_day = p->sessions(0).day();
    row.weeks_since_start = static_cast<int>(p->weeks_since_start());
    for (const v1::WeekSummary& week : p->weeks()) {
      absl::CivilDay monday;
      if (!absl::ParseCivilTime(week.monday(), &monday)) continue;
      if (range.Overlaps(monday, monday + 6)) {
        AddWeek(week.adherence(), row.weeks);
      }
    }
    for (const v1::SideProgress& side : p->sides()) {
      const std::string name = SideName(side.side());
      if (side.readiness().ready()) row.ready_sides.push_back(name);
      const v1::Trend& trend = side.pelvic_drop_trend();
      if (!trend.has_slope_per_week()) continue;
      (side.side() == v1::STANCE_SIDE_RIGHT ? row.right_trend_deg_per_week
                                            : row.left_trend_deg_per_week) =
          trend.slope_per_week();
      if (row.weeks_since_start >= review_after_weeks &&
          trend.slope_per_week() >= 0) {
        row.not_improving.push_back(name);
        row.review_reasons.push_back(absl::StrFormat(
            "%s: weekly mean pelvic drop %+.2f deg/week over %d weeks with "
            "data, %d weeks after the first session",
            name, trend.slope_per_week(), trend.weeks(),
            p->weeks_since_start()));
      }
    }
    summary.patients.push_back(std::move(row));
  }

  if (period_end <= start) return summary;  // no station history yet
  auto at_start = StationsAt(env, start);
  if (!at_start.ok()) return at_start.status();
  std::map<std::string, StationTimeline> stations = std::move(*at_start);
  auto s =
      WalkStations(env, start, period_end, stations, [&](const DataGap& gap) {
        summary.gaps.push_back(gap);
        return true;
      });
  if (!s.ok()) return s;
  for (const auto& [id, t] : stations) {
    summary.stations.push_back({id, period_end - t.known_from,
                                t.connected_total, t.disconnections,
                                t.longest_offline, t.spool_losses});
  }
  return summary;
}

// The clinic summary in `format` (CSV, PDF or HTML), rendered whole from
// its model and then sent in chunks.
absl::Status WriteClinicSummary(const v1::ExportRequest& request,
                                const DayRange& range, int review_after_weeks,
                                const ExportEnvironment& env,
                                ReportWriter& out) {
  auto summary = BuildClinicSummary(request, range, review_after_weeks, env);
  if (!summary.ok()) return summary.status();
  const std::string base =
      absl::StrCat("clinic-summary-", request.from(), "-to-", request.to());
  reports::RenderOptions options;
  options.generated_at = env.now;
  options.zone = env.zone;
  switch (request.format()) {
    case v1::REPORT_FORMAT_PDF: {
      auto pdf = reports::RenderClinicSummaryPdf(*summary, options);
      if (!pdf.ok()) return pdf.status();
      return WriteWhole("application/pdf", absl::StrCat(base, ".pdf"), *pdf,
                        out);
    }
    case v1::REPORT_FORMAT_HTML:
      return WriteWhole("text/html; charset=utf-8", absl::StrCat(base, ".html"),
                        reports::RenderClinicSummaryHtml(*summary, options),
                        out);
    default:
      return WriteWhole("text/csv; charset=utf-8", absl::StrCat(base, ".csv"),
                        reports::RenderClinicSummaryCsv(*summary), out);
  }
}

std::string FormatList() {
  return "REPORT_FORMAT_CSV (1), REPORT_FORMAT_SETS_CSV (2), "
         "REPORT_FORMAT_FHIR (3), REPORT_FORMAT_PDF (10), REPORT_FORMAT_HTML "
         "(11)";
}

}  // namespace

absl::Status ExportReport(const v1::ExportRequest& request,
                          const ExportEnvironment& env, ReportWriter& out) {
  const v1::ReportFormat format = request.format();
  if (format == v1::REPORT_FORMAT_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("format is required: ", FormatList()));
  }
  if (format != v1::REPORT_FORMAT_CSV && format != v1::REPORT_FORMAT_SETS_CSV &&
      format != v1::REPORT_FORMAT_FHIR && format != v1::REPORT_FORMAT_PDF &&
      format != v1::REPORT_FORMAT_HTML) {
    return absl::InvalidArgumentError(
        absl::StrCat("format ", static_cast<int>(format),
                     " is not one this hub exports: ", FormatList()));
  }
  auto range = ParseRange(request);
  if (!range.ok()) return range.status();

  switch (request.kind()) {
    case v1::REPORT_KIND_UNSPECIFIED:
    case v1::REPORT_KIND_PATIENT:
      break;
    case v1::REPORT_KIND_CLINIC: {
      if (request.patient_id() != 0) {
        return absl::InvalidArgumentError(
            "a clinic summary covers every patient: leave patient_id unset");
      }
      if (!range->from || !range->to) {
        return absl::InvalidArgumentError(
            "a clinic summary needs its period: from and to (YYYY-MM-DD)");
      }
      if (format == v1::REPORT_FORMAT_FHIR) {
        return absl::InvalidArgumentError(
            "FHIR describes one patient's record: a clinic summary comes as "
            "REPORT_FORMAT_CSV, REPORT_FORMAT_PDF or REPORT_FORMAT_HTML "
            "(FHIR bundles are exported per patient, REPORT_KIND_PATIENT)");
      }
      if (format == v1::REPORT_FORMAT_SETS_CSV) {
        return absl::InvalidArgumentError(
            "sets CSV lists one patient's sets: a clinic summary comes as "
            "REPORT_FORMAT_CSV, REPORT_FORMAT_PDF or REPORT_FORMAT_HTML");
      }
      // A year: beyond it "not improving" means nothing for an 8-12 week
      // programme, and a typo (400) should not pass silently.
      if (request.review_after_weeks() > 52) {
        return absl::InvalidArgumentError(absl::StrCat(
            "review_after_weeks must be 1 to 52 (0: the default ",
            kDefaultReviewAfterWeeks, "), not ", request.review_after_weeks()));
      }
      const int review_after_weeks =
          request.review_after_weeks() == 0
              ? kDefaultReviewAfterWeeks
              : static_cast<int>(request.review_after_weeks());
      return WriteClinicSummary(request, *range, review_after_weeks, env, out);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("kind ", static_cast<int>(request.kind()),
                       " is not one this hub knows: REPORT_KIND_PATIENT (1) "
                       "or REPORT_KIND_CLINIC (2)"));
  }

  if (request.review_after_weeks() != 0) {
    return absl::InvalidArgumentError(
        "review_after_weeks belongs to the clinic summary, not a patient "
        "report");
  }
  if (request.patient_id() <= 0) {
    return absl::InvalidArgumentError(
        "a patient report needs patient_id (> 0)");
  }
  auto patient = env.store->GetPatient(request.patient_id());
  if (!patient.ok()) return patient.status();
  if (format == v1::REPORT_FORMAT_PDF || format == v1::REPORT_FORMAT_HTML) {
    return WriteProgressReport(patient->patient_id(), format, env, out);
  }
  const std::string base = absl::StrFormat("patient-%d", patient->patient_id());
  absl::Status s;
  switch (format) {
    case v1::REPORT_FORMAT_CSV:
      out.Start(
          "text/csv; charset=utf-8",
          absl::StrCat(base, "-repetitions", RangeSuffix(request), ".csv"));
      s = RepetitionsCsv(*patient, *range, env, out);
      break;
    case v1::REPORT_FORMAT_SETS_CSV:
      out.Start("text/csv; charset=utf-8",
                absl::StrCat(base, "-sets", RangeSuffix(request), ".csv"));
      s = SetsCsv(*patient, *range, env, out);
      break;
    default:
      out.Start("application/fhir+json",
                absl::StrCat(base, "-fhir", RangeSuffix(request), ".json"));
      s = FhirBundle(*patient, *range, env, out);
      break;
  }
  if (!s.ok()) return s;
  return out.Finish() ? absl::OkStatus() : ClientGone();
}

}  // namespace stephub::api
