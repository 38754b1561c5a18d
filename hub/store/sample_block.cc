#include "hub/store/sample_block.h"

#include <zlib.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/arena.h"
#include "stephub/v1/station_link.pb.h"

namespace stephub::store {
namespace {

// Bumped when the layout changes; a block says which layout it uses.
// 1: the whole body through zlib. 2: the floats' byte planes that are noise
// follow the zlib stream as they are, with their CRC-32.
constexpr uint8_t kLayout = 2;
constexpr uint8_t kFirstLayout = 1;
// Far above a minute of any station; refuses a damaged size before
// allocating it.
constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 30;
// Holds a full-rate batch's messages twice over (parsed and rebuilt).
constexpr size_t kArenaBlockBytes = 64 << 10;

constexpr int kImuChannels = 6;
constexpr int kForceChannels = 3;
enum StreamKind : uint32_t { kImu = 0, kForce = 1 };

// Differences are taken modulo 2^64 so that any int64 comes back exactly.
uint64_t Minus(int64_t a, int64_t b) {
  return static_cast<uint64_t>(a) - static_cast<uint64_t>(b);
}
int64_t Plus(int64_t a, uint64_t d) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + d);
}
uint64_t ZigZag(uint64_t d) {
  const auto v = static_cast<int64_t>(d);
  return (d << 1) ^ static_cast<uint64_t>(v >> 63);
}
uint64_t UnZigZag(uint64_t z) { return (z >> 1) ^ (~(z & 1) + 1); }

class BodyWriter {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  // A signed difference, small either way.
  void Delta(uint64_t d) { Varint(ZigZag(d)); }
  void Bytes(absl::string_view b) {
    Varint(b.size());
    out_.append(b.data(), b.size());
  }
  void Raw(const std::string& b) { out_.append(b); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class BodyReader {
 public:
  explicit BodyReader(absl::string_view in) : in_(in) {}

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool Delta(uint64_t* d) {
    uint64_t z;
    if (!Varint(&z)) return false;
    *d = UnZigZag(z);
    return true;
  }
  bool Bytes(absl::string_view* b) {
    uint64_t n;
    if (!Varint(&n)) return false;
    return Raw(n, b);
  }
  bool Raw(uint64_t n, absl::string_view* b) {
    if (n > in_.size() - pos_) return false;
    *b = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  absl::string_view in_;
  size_t pos_ = 0;
};

// One sensor's samples over the whole block, channel by channel.
struct Stream {
  std::vector<int64_t> t_us;
  std::vector<std::vector<float>> channels;
};

using StreamKey = std::pair<uint32_t, uint32_t>;  // kind, sensor_id

// A batch's numbers that the next batch's are written relative to.
struct BatchHeader {
  int64_t seq = 0;
  int64_t received_us = 0;
  int64_t first_t_us = 0;
};
BatchHeader HeaderOf(const BatchRecord& b) {
  return {static_cast<int64_t>(b.seq), absl::ToUnixMicros(b.received_at),
          b.first_t_us};
}

// The fields of an ImuSamples or ForceSamples, in channel order.
std::array<const google::protobuf::RepeatedField<float>*, kImuChannels>
ImuChannels(const v1::ImuSamples& s) {
  return {&s.ax_mps2(),  &s.ay_mps2(),  &s.az_mps2(),
          &s.gx_radps(), &s.gy_radps(), &s.gz_radps()};
}
std::array<google::protobuf::RepeatedField<float>*, kImuChannels>
MutableImuChannels(v1::ImuSamples* s) {
  return {s->mutable_ax_mps2(),  s->mutable_ay_mps2(),  s->mutable_az_mps2(),
          s->mutable_gx_radps(), s->mutable_gy_radps(), s->mutable_gz_radps()};
}
std::array<const google::protobuf::RepeatedField<float>*, kForceChannels>
ForceChannels(const v1::ForceSamples& s) {
  return {&s.fz_n(), &s.cop_x_mm(), &s.cop_y_mm()};
}
std::array<google::protobuf::RepeatedField<float>*, kForceChannels>
MutableForceChannels(v1::ForceSamples* s) {
  return {s->mutable_fz_n(), s->mutable_cop_x_mm(), s->mutable_cop_y_mm()};
}

// Whether every channel has one value per timestamp: the only shape the
// columns can hold.
template <typename Channels>
bool Rectangular(int n, const Channels& channels) {
  for (const auto* c : channels) {
    if (c->size() != n) return false;
  }
  return true;
}

// The batch as its known fields rebuild it, on `arena`; null when that
// would not give back `payload` byte for byte, so that it must be kept
// verbatim.
const v1::SampleBatch* ColumnarForm(const BatchRecord& record,
                                    google::protobuf::Arena* arena) {
  auto& parsed =
      *google::protobuf::Arena::CreateMessage<v1::SampleBatch>(arena);
  if (!parsed.ParseFromString(record.payload)) return nullptr;
  auto& known = *google::protobuf::Arena::CreateMessage<v1::SampleBatch>(arena);
  known.set_seq(parsed.seq());
  known.set_follows_spool_loss(parsed.follows_spool_loss());
  for (const v1::ImuSamples& imu : parsed.imu()) {
    if (!Rectangular(imu.t_us_size(), ImuChannels(imu))) return nullptr;
    v1::ImuSamples* copy = known.add_imu();
    copy->set_sensor_id(imu.sensor_id());
    *copy->mutable_t_us() = imu.t_us();
    auto from = ImuChannels(imu);
    auto to = MutableImuChannels(copy);
    for (int c = 0; c < kImuChannels; ++c) *to[c] = *from[c];
  }
  for (const v1::ForceSamples& force : parsed.force()) {
    if (!Rectangular(force.t_us_size(), ForceChannels(force))) {
      return nullptr;
    }
    v1::ForceSamples* copy = known.add_force();
    copy->set_sensor_id(force.sensor_id());
    *copy->mutable_t_us() = force.t_us();
    auto from = ForceChannels(force);
    auto to = MutableForceChannels(copy);
    for (int c = 0; c < kForceChannels; ++c) *to[c] = *from[c];
  }
  if (known.SerializeAsString() != record.payload) return nullptr;
  return &known;
}

void WriteTimes(const std::vector<int64_t>& t_us, BodyWriter* body) {
  int64_t previous = 0;
  uint64_t previous_step = 0;
  for (int64_t t : t_us) {
    const uint64_t step = Minus(t, previous);
    body->Delta(step - previous_step);
    previous = t;
    previous_step = step;
  }
}

bool ReadTimes(size_t n, BodyReader* body, std::vector<int64_t>* t_us) {
  t_us->resize(n);
  int64_t previous = 0;
  uint64_t previous_step = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t change;
    if (!body->Delta(&change)) return false;
    previous_step += change;
    previous = Plus(previous, previous_step);
    (*t_us)[i] = previous;
  }
  return true;
}

// Whether deflate would spend its time on `plane` for nothing: its bytes
// are near 8 bits of entropy each (Huffman coding gains under 1 %) and
// hardly repeat their neighbour (no runs to match). Sensor noise fills the
// floats' low mantissa bytes so; half the planes of a minute are such.
bool IsNoise(absl::string_view plane) {
  constexpr size_t kMinBytes = 1024;  // below, entropy cannot be told
  if (plane.size() < kMinBytes) return false;
  std::array<uint32_t, 256> counts{};
  size_t repeats = 0;
  uint8_t previous = 0;
  for (char c : plane) {
    const auto byte = static_cast<uint8_t>(c);
    ++counts[byte];
    repeats += byte == previous;
    previous = byte;
  }
  const auto n = static_cast<double>(plane.size());
  if (static_cast<double>(repeats) > n / 100) return false;
  double bits = 0;
  for (uint32_t count : counts) {
    if (count > 0) bits -= count * std::log2(count / n);
  }
  return bits / n > 7.92;
}

// XOR with the previous value, then byte planes from the most significant.
// Which planes go to `noise` rather than the body is a bitmask ahead of them.
void WriteFloats(const std::vector<float>& values, BodyWriter* body,
                 std::string* noise) {
  const size_t n = values.size();
  std::string planes(n * 4, '\0');
  uint32_t previous = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto bits = std::bit_cast<uint32_t>(values[i]);
    const uint32_t x = bits ^ previous;
    previous = bits;
    for (int p = 0; p < 4; ++p) {
      planes[p * n + i] = static_cast<char>(x >> (24 - 8 * p));
    }
  }
  const absl::string_view all(planes);
  uint32_t noise_planes = 0;
  for (int p = 0; p < 4; ++p) {
    if (IsNoise(all.substr(p * n, n))) noise_planes |= 1u << p;
  }
  body->Varint(noise_planes);
  for (int p = 0; p < 4; ++p) {
    const absl::string_view plane = all.substr(p * n, n);
    if ((noise_planes & (1u << p)) != 0) {
      noise->append(plane.data(), plane.size());
    } else {
      body->out().append(plane.data(), plane.size());
    }
  }
}

// `noise` is null for layout 1, where every plane is in the body.
bool ReadFloats(size_t n, BodyReader* body, BodyReader* noise,
                std::vector<float>* values) {
  uint64_t noise_planes = 0;
  if (noise != nullptr && (!body->Varint(&noise_planes) || noise_planes > 15)) {
    return false;
  }
  std::array<absl::string_view, 4> planes;
  for (int p = 0; p < 4; ++p) {
    BodyReader* from = (noise_planes & (1u << p)) != 0 ? noise : body;
    if (n > from->remaining() || !from->Raw(n, &planes[p])) return false;
  }
  values->resize(n);
  uint32_t previous = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t x = 0;
    for (int p = 0; p < 4; ++p) {
      x |= static_cast<uint32_t>(static_cast<uint8_t>(planes[p][i]))
           << (24 - 8 * p);
    }
    previous ^= x;
    (*values)[i] = std::bit_cast<float>(previous);
  }
  return true;
}

uint32_t NoiseChecksum(absl::string_view noise) {
  return static_cast<uint32_t>(
      crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(noise.data()),
            static_cast<uInt>(noise.size())));
}

absl::Status Damaged(absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("sample block damaged: ", what,
                   "; the batches it held cannot be read back"));
}

int ChannelCount(uint32_t kind) {
  return kind == kImu ? kImuChannels : kForceChannels;
}

}  // namespace

absl::StatusOr<std::string> EncodeSampleBlock(
    absl::Span<const BatchRecord> batches) {
  BodyWriter body;
  body.Varint(batches.size());
  std::vector<std::string> boots;
  std::map<std::string, uint64_t, std::less<>> boot_index;
  for (const BatchRecord& b : batches) {
    if (boot_index.emplace(b.boot_id, boots.size()).second) {
      boots.push_back(b.boot_id);
    }
  }
  body.Varint(boots.size());
  for (const std::string& boot : boots) body.Bytes(boot);

  std::map<StreamKey, size_t> stream_index;
  std::vector<Stream> streams;
  auto stream_of = [&](uint32_t kind, uint32_t sensor_id) -> Stream& {
    auto [it, added] =
        stream_index.emplace(StreamKey{kind, sensor_id}, streams.size());
    if (added) {
      streams.emplace_back();
      streams.back().channels.resize(ChannelCount(kind));
    }
    return streams[it->second];
  };
  // A minute is thousands of batches of a dozen repeated fields each: their
  // messages live on an arena, reset per batch, instead of the heap.
  std::vector<char> arena_block(kArenaBlockBytes);
  google::protobuf::Arena arena(arena_block.data(), arena_block.size());
  // Each batch's numbers relative to the one before: they change little.
  BatchHeader previous;
  for (const BatchRecord& b : batches) {
    arena.Reset();
    const BatchHeader header = HeaderOf(b);
    body.Varint(boot_index.find(b.boot_id)->second);
    body.Delta(Minus(header.seq, previous.seq));
    body.Delta(Minus(header.received_us, previous.received_us));
    body.Delta(Minus(header.first_t_us, previous.first_t_us));
    body.Delta(Minus(b.last_t_us, b.first_t_us));
    body.Varint(b.sample_count);
    previous = header;

    const v1::SampleBatch* columnar = ColumnarForm(b, &arena);
    if (!columnar) {
      body.Varint(0);
      body.Bytes(b.payload);
      continue;
    }
    body.Varint(1 | (columnar->follows_spool_loss() ? 2 : 0));
    body.Delta(Minus(static_cast<int64_t>(columnar->seq()),
                     static_cast<int64_t>(b.seq)));
    body.Varint(columnar->imu_size());
    for (const v1::ImuSamples& imu : columnar->imu()) {
      body.Varint(imu.sensor_id());
      body.Varint(imu.t_us_size());
      Stream& s = stream_of(kImu, imu.sensor_id());
      s.t_us.insert(s.t_us.end(), imu.t_us().begin(), imu.t_us().end());
      auto from = ImuChannels(imu);
      for (int c = 0; c < kImuChannels; ++c) {
        s.channels[c].insert(s.channels[c].end(), from[c]->begin(),
                             from[c]->end());
      }
    }
    body.Varint(columnar->force_size());
    for (const v1::ForceSamples& force : columnar->force()) {
      body.Varint(force.sensor_id());
      body.Varint(force.t_us_size());
      Stream& s = stream_of(kForce, force.sensor_id());
      s.t_us.insert(s.t_us.end(), force.t_us().begin(), force.t_us().end());
      auto from = ForceChannels(force);
      for (int c = 0; c < kForceChannels; ++c) {
        s.channels[c].insert(s.channels[c].end(), from[c]->begin(),
                             from[c]->end());
      }
    }
  }
  // Streams in the order they first appeared, which the reader recovers.
  std::string noise;
  for (const Stream& s : streams) {
    WriteTimes(s.t_us, &body);
    for (const std::vector<float>& channel : s.channels) {
      WriteFloats(channel, &body, &noise);
    }
  }

  const std::string& raw = body.out();
  // Run-length matching only: the planes that compress are runs of equal
  // sign, exponent and high mantissa bytes, and the low planes are noise
  // that no match search shrinks. Against zlib's default (level 6, full
  // match search) a block costs 30 % less CPU to fold for 3 % more bytes
  // (docs/BENCHMARKS.md); on the hub's two cores the CPU is the scarcer.
  // Any zlib reader inflates it, so blocks written either way read alike.
  uLongf packed_size = compressBound(raw.size());
  std::string packed(packed_size, '\0');
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, /*windowBits=*/15,
                   /*memLevel=*/8, Z_RLE) != Z_OK) {
    return absl::InternalError("zlib could not start compressing");
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(packed.data());
  zs.avail_out = static_cast<uInt>(packed_size);
  const int deflated = deflate(&zs, Z_FINISH);
  packed_size = zs.total_out;
  deflateEnd(&zs);
  if (deflated != Z_STREAM_END) {
    return absl::InternalError("zlib could not compress a sample block");
  }
  packed.resize(packed_size);
  BodyWriter header;
  header.out().push_back(static_cast<char>(kLayout));
  header.Varint(raw.size());
  header.Bytes(packed);
  // zlib checks the body it inflates; the noise needs its own check.
  header.Varint(NoiseChecksum(noise));
  header.Raw(noise);
  return std::move(header.out());
}

absl::StatusOr<std::vector<BatchRecord>> DecodeSampleBlock(
    absl::string_view station_id, absl::string_view block) {
  if (block.empty()) return Damaged("empty");
  const auto layout = static_cast<uint8_t>(block[0]);
  if (layout < kFirstLayout || layout > kLayout) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sample block has layout ", static_cast<int>(layout),
        "; this StepHub reads layouts ", kFirstLayout, " to ", kLayout));
  }
  BodyReader header(block.substr(1));
  uint64_t raw_size;
  if (!header.Varint(&raw_size) || raw_size > kMaxBodyBytes) {
    return Damaged("bad size");
  }
  absl::string_view packed;
  std::optional<BodyReader> noise;
  if (layout == kFirstLayout) {
    header.Raw(header.remaining(), &packed);
  } else {
    uint64_t checksum;
    absl::string_view noise_bytes;
    if (!header.Bytes(&packed) || !header.Varint(&checksum)) {
      return Damaged("bad header");
    }
    header.Raw(header.remaining(), &noise_bytes);
    if (checksum != NoiseChecksum(noise_bytes)) {
      return Damaged("its noise planes fail their checksum");
    }
    noise.emplace(noise_bytes);
  }
  std::string raw(raw_size, '\0');
  uLongf unpacked = raw_size;
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &unpacked,
                 reinterpret_cast<const Bytef*>(packed.data()),
                 packed.size()) != Z_OK ||
      unpacked != raw_size) {
    return Damaged("zlib refuses it");
  }

  BodyReader body(raw);
  uint64_t batch_count, boot_count;
  if (!body.Varint(&batch_count) || batch_count > body.remaining()) {
    return Damaged("bad batch count");
  }
  if (!body.Varint(&boot_count) || boot_count > body.remaining()) {
    return Damaged("bad boot count");
  }
  std::vector<std::string> boots(boot_count);
  for (std::string& boot : boots) {
    absl::string_view b;
    if (!body.Bytes(&b)) return Damaged("boot id cut short");
    boot.assign(b.data(), b.size());
  }

  // Per batch, what it holds; the samples follow in the streams.
  struct Entry {
    uint32_t sensor_id;
    size_t stream;
    size_t count;
  };
  struct Layout {
    v1::SampleBatch* columnar = nullptr;  // on `arena`; seq and flags only
    std::vector<Entry> imu, force;
  };
  // The batches' messages are rebuilt only to be serialized: an arena
  // spares a heap allocation per repeated field.
  google::protobuf::Arena arena;
  std::vector<BatchRecord> records(batch_count);
  std::vector<Layout> layouts(batch_count);
  std::map<StreamKey, size_t> stream_index;
  std::vector<uint32_t> stream_kinds;
  std::vector<size_t> stream_sizes;
  BatchHeader previous;
  for (uint64_t i = 0; i < batch_count; ++i) {
    BatchRecord& r = records[i];
    uint64_t boot, seq, received, first, span, samples, form;
    if (!body.Varint(&boot) || boot >= boots.size() || !body.Delta(&seq) ||
        !body.Delta(&received) || !body.Delta(&first) || !body.Delta(&span) ||
        !body.Varint(&samples) || samples > UINT32_MAX || !body.Varint(&form)) {
      return Damaged(absl::StrCat("batch ", i, "'s header"));
    }
    r.station_id.assign(station_id.data(), station_id.size());
    r.boot_id = boots[boot];
    previous.seq = Plus(previous.seq, seq);
    previous.received_us = Plus(previous.received_us, received);
    previous.first_t_us = Plus(previous.first_t_us, first);
    r.seq = static_cast<uint64_t>(previous.seq);
    r.received_at = absl::FromUnixMicros(previous.received_us);
    r.first_t_us = previous.first_t_us;
    r.last_t_us = Plus(r.first_t_us, span);
    r.sample_count = static_cast<uint32_t>(samples);
    if (form == 0) {
      absl::string_view payload;
      if (!body.Bytes(&payload)) return Damaged("verbatim batch cut short");
      r.payload.assign(payload.data(), payload.size());
      continue;
    }
    if (form > 3) return Damaged("unknown batch form");
    Layout& layout = layouts[i];
    layout.columnar =
        google::protobuf::Arena::CreateMessage<v1::SampleBatch>(&arena);
    layout.columnar->set_follows_spool_loss((form & 2) != 0);
    uint64_t payload_seq;
    if (!body.Delta(&payload_seq)) return Damaged("batch seq");
    layout.columnar->set_seq(
        static_cast<uint64_t>(Plus(static_cast<int64_t>(r.seq), payload_seq)));
    for (uint32_t kind : {kImu, kForce}) {
      uint64_t entries;
      if (!body.Varint(&entries) || entries > body.remaining()) {
        return Damaged("sensor count");
      }
      for (uint64_t e = 0; e < entries; ++e) {
        uint64_t sensor_id, count;
        if (!body.Varint(&sensor_id) || sensor_id > UINT32_MAX ||
            !body.Varint(&count) || count > body.remaining()) {
          return Damaged("sensor entry");
        }
        auto [it, added] = stream_index.emplace(
            StreamKey{kind, static_cast<uint32_t>(sensor_id)},
            stream_kinds.size());
        if (added) {
          stream_kinds.push_back(kind);
          stream_sizes.push_back(0);
        }
        stream_sizes[it->second] += count;
        (kind == kImu ? layout.imu : layout.force)
            .push_back({static_cast<uint32_t>(sensor_id), it->second, count});
      }
    }
  }

  std::vector<Stream> streams(stream_kinds.size());
  for (size_t s = 0; s < streams.size(); ++s) {
    // Every sample takes at least one byte of time: a damaged size fails
    // here instead of allocating.
    if (stream_sizes[s] > body.remaining() ||
        !ReadTimes(stream_sizes[s], &body, &streams[s].t_us)) {
      return Damaged("timestamps cut short");
    }
    streams[s].channels.resize(ChannelCount(stream_kinds[s]));
    for (std::vector<float>& channel : streams[s].channels) {
      if (!ReadFloats(stream_sizes[s], &body, noise ? &*noise : nullptr,
                      &channel)) {
        return Damaged("samples cut short");
      }
    }
  }
  if (body.remaining() != 0 || (noise && noise->remaining() != 0)) {
    return Damaged("bytes left over");
  }

  std::vector<size_t> cursor(streams.size(), 0);
  auto take = [&](const Entry& e, google::protobuf::RepeatedField<int64_t>* t,
                  auto channels) {
    const Stream& s = streams[e.stream];
    const auto from = static_cast<ptrdiff_t>(cursor[e.stream]);
    const auto to = from + static_cast<ptrdiff_t>(e.count);
    t->Add(s.t_us.begin() + from, s.t_us.begin() + to);
    for (size_t c = 0; c < channels.size(); ++c) {
      channels[c]->Add(s.channels[c].begin() + from,
                       s.channels[c].begin() + to);
    }
    cursor[e.stream] += e.count;
  };
  for (uint64_t i = 0; i < batch_count; ++i) {
    Layout& layout = layouts[i];
    if (!layout.columnar) continue;
    v1::SampleBatch& batch = *layout.columnar;
    for (const Entry& e : layout.imu) {
      v1::ImuSamples* imu = batch.add_imu();
      imu->set_sensor_id(e.sensor_id);
      take(e, imu->mutable_t_us(), MutableImuChannels(imu));
    }
    for (const Entry& e : layout.force) {
      v1::ForceSamples* force = batch.add_force();
      force->set_sensor_id(e.sensor_id);
      take(e, force->mutable_t_us(), MutableForceChannels(force));
    }
    records[i].payload = batch.SerializeAsString();
  }
  return records;
}

}  // namespace stephub::store
