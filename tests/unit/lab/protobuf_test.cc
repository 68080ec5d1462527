#include "tools/lab/apiserver/protobuf.h"

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

// A tiny protobuf writer for building test bodies.
std::string Varint(uint64_t v) {
  std::string out;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    out.push_back(static_cast<char>(v ? b | 0x80 : b));
  } while (v);
  return out;
}
std::string Bytes(uint32_t field, const std::string& data) {
  return Varint(field << 3 | 2) + Varint(data.size()) + data;
}
std::string Int(uint32_t field, uint64_t v) { return Varint(field << 3) + Varint(v); }
std::string MapEntry(uint32_t field, const std::string& k, const std::string& v) {
  return Bytes(field, Bytes(1, k) + Bytes(2, v));
}
std::string Envelope(const std::string& kind, const std::string& raw) {
  return std::string("k8s\0", 4) + Bytes(1, Bytes(1, "v1") + Bytes(2, kind)) + Bytes(2, raw) + Bytes(3, "") +
         Bytes(4, "");
}

TEST(DecodeKubernetesProtobuf, Namespace) {
  std::string meta = Bytes(1, "team-a") + Bytes(2, "") + MapEntry(11, "team", "a") + MapEntry(11, "env", "lab") +
                     MapEntry(12, "note", "x") + Int(7, 3);  // generation: ignored
  auto obj = DecodeKubernetesProtobuf(Envelope("Namespace", Bytes(1, meta) + Bytes(2, "") + Bytes(3, "")));
  ASSERT_TRUE(obj.ok()) << obj.error().ToString();
  EXPECT_EQ((*obj)["kind"], "Namespace");
  EXPECT_EQ((*obj)["metadata"]["name"], "team-a");
  EXPECT_FALSE((*obj)["metadata"].contains("generateName"));
  EXPECT_EQ((*obj)["metadata"]["labels"], (nlohmann::json{{"team", "a"}, {"env", "lab"}}));
  EXPECT_EQ((*obj)["metadata"]["annotations"]["note"], "x");
}

TEST(DecodeKubernetesProtobuf, ConfigMapData) {
  std::string raw = Bytes(1, Bytes(1, "eni-config") + Bytes(3, "kube-system")) + MapEntry(2, "eni_conf", "{}") +
                    MapEntry(2, "k", "v");
  auto obj = DecodeKubernetesProtobuf(Envelope("ConfigMap", raw));
  ASSERT_TRUE(obj.ok()) << obj.error().ToString();
  EXPECT_EQ((*obj)["metadata"]["namespace"], "kube-system");
  EXPECT_EQ((*obj)["data"], (nlohmann::json{{"eni_conf", "{}"}, {"k", "v"}}));
}

TEST(DecodeKubernetesProtobuf, PodSpecSubset) {
  std::string port = Bytes(1, "http") + Int(3, 8080) + Bytes(4, "TCP");
  std::string container = Bytes(1, "c") + Bytes(2, "busybox") + Bytes(3, "sleep") + Bytes(4, "1000") +
                          Bytes(6, port) + Bytes(9, "ignored-volume-mount");
  std::string spec = Bytes(2, container) + Bytes(3, "Never") + Bytes(10, "node-1") + Int(11, 1);
  auto obj = DecodeKubernetesProtobuf(Envelope("Pod", Bytes(1, Bytes(1, "p")) + Bytes(2, spec)));
  ASSERT_TRUE(obj.ok()) << obj.error().ToString();
  const auto& s = (*obj)["spec"];
  EXPECT_EQ(s["nodeName"], "node-1");
  EXPECT_EQ(s["hostNetwork"], true);
  EXPECT_EQ(s["restartPolicy"], "Never");
  EXPECT_EQ(s["containers"][0]["image"], "busybox");
  EXPECT_EQ(s["containers"][0]["command"], nlohmann::json::array({"sleep"}));
  EXPECT_EQ(s["containers"][0]["args"], nlohmann::json::array({"1000"}));
  EXPECT_EQ(s["containers"][0]["ports"][0], (nlohmann::json{{"name", "http"}, {"containerPort", 8080}, {"protocol", "TCP"}}));
}

TEST(DecodeKubernetesProtobuf, RejectsWhatItCannotRead) {
  EXPECT_FALSE(DecodeKubernetesProtobuf("{}").ok());                                   // no magic
  std::string good = Envelope("Namespace", Bytes(1, Bytes(1, "x")));
  EXPECT_FALSE(DecodeKubernetesProtobuf(good.substr(0, good.size() - 9)).ok());          // truncated
  auto secret = DecodeKubernetesProtobuf(Envelope("Secret", ""));
  ASSERT_FALSE(secret.ok());
  EXPECT_EQ(secret.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace terway::lab
