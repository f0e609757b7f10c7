#include "transport/auth/auth.hpp"

#include <gtest/gtest.h>

namespace anya::transport::auth {
namespace {

AuthConfig config() {
  AuthConfig c;
  c.custom_roles["deployer"] = {Permission::kv_read, Permission::kv_write};
  c.client_roles["ops"] = "admin";
  c.client_roles["prom"] = "viewer";
  c.client_roles["ci"] = "deployer";
  c.tokens.push_back({"static-ci", sha256_hex("a-static-token-of-some-length"), "operator"});
  return c;
}

Caller client(std::string name) {
  Caller c;
  c.client_name = std::move(name);
  return c;
}

Caller bearer(std::string token) {
  Caller c;
  c.authorization = "Bearer " + std::move(token);
  return c;
}

TEST(Auth, BuiltinRolesFromViewerToAdmin) {
  const Authorizer a(config());
  for (Permission p : all_permissions()) {
    EXPECT_EQ(a.role_allows("admin", p), p != Permission::node_join) << permission_name(p);
    EXPECT_EQ(a.role_allows("join", p), p == Permission::node_join) << permission_name(p);
  }
  EXPECT_TRUE(a.role_allows("viewer", Permission::kv_read));
  EXPECT_TRUE(a.role_allows("viewer", Permission::metrics_read));
  EXPECT_FALSE(a.role_allows("viewer", Permission::kv_write));
  EXPECT_TRUE(a.role_allows("operator", Permission::kv_write));
  EXPECT_TRUE(a.role_allows("operator", Permission::leader_transfer));
  EXPECT_FALSE(a.role_allows("operator", Permission::members_write));
  EXPECT_FALSE(a.role_allows("operator", Permission::config_write));
  EXPECT_FALSE(a.role_allows("operator", Permission::tokens_manage));
  EXPECT_TRUE(a.role_allows("deployer", Permission::kv_write));
  EXPECT_FALSE(a.role_allows("deployer", Permission::status_read));
  EXPECT_FALSE(a.role_allows("nobody", Permission::health_read));
}

TEST(Auth, CertificatesMapToTheirRoleAndDefaultDeny) {
  const Authorizer a(config());
  AuthOutcome ok = a.check(client("ops"), Permission::members_write, 0);
  EXPECT_EQ(ok.kind, AuthOutcome::Kind::ok);
  EXPECT_EQ(ok.principal.actor, "client:ops");
  EXPECT_EQ(ok.principal.role, "admin");
  AuthOutcome no_perm = a.check(client("prom"), Permission::kv_write, 0);
  EXPECT_EQ(no_perm.kind, AuthOutcome::Kind::forbidden);
  EXPECT_NE(no_perm.reason.find("lacks permission kv.write"), std::string::npos);
  AuthOutcome unbound = a.check(client("stranger"), Permission::health_read, 0);
  EXPECT_EQ(unbound.kind, AuthOutcome::Kind::forbidden);
  EXPECT_NE(unbound.reason.find("bound to no role"), std::string::npos);
  AuthOutcome none = a.check(Caller{}, Permission::health_read, 0);
  EXPECT_EQ(none.kind, AuthOutcome::Kind::unauthenticated);
}

TEST(Auth, ANodeCertificateIsNoAdminCredential) {
  const Authorizer a(config());
  Caller node;
  node.node_id = 2;
  for (Permission p : all_permissions()) {
    const AuthOutcome o = a.check(node, p, 0);
    EXPECT_EQ(o.kind, AuthOutcome::Kind::forbidden) << permission_name(p);
    EXPECT_EQ(o.principal.actor, "node:2");
  }
}

TEST(Auth, StaticTokensByHash) {
  const Authorizer a(config());
  AuthOutcome ok = a.check(bearer("a-static-token-of-some-length"), Permission::kv_write, 0);
  EXPECT_EQ(ok.kind, AuthOutcome::Kind::ok);
  EXPECT_EQ(ok.principal.actor, "token:static-ci");
  EXPECT_EQ(a.check(bearer("a-static-token-of-some-lengtH"), Permission::kv_read, 0).kind,
            AuthOutcome::Kind::unauthenticated);
  Caller basic;
  basic.authorization = "Basic dXNlcjpwYXNz";
  EXPECT_EQ(a.check(basic, Permission::kv_read, 0).kind, AuthOutcome::Kind::unauthenticated);
  EXPECT_EQ(a.check(bearer(std::string(300, 'x')), Permission::kv_read, 0).kind,
            AuthOutcome::Kind::unauthenticated);
}

TEST(Auth, RuntimeTokensAreLookedUpCheckedAndExpire) {
  Result<NewToken> t = generate_token();
  ASSERT_TRUE(t.is_ok());
  TokenRecord record{t->id, "deploy-bot", "deployer", t->sha256_hex, 5000, "client:ops"};
  bool revoked = false;
  const Authorizer a(config(), [&](std::string_view id) -> std::optional<TokenRecord> {
    if (revoked || id != record.id) return std::nullopt;
    return record;
  });
  AuthOutcome ok = a.check(bearer(t->token), Permission::kv_write, 4999);
  EXPECT_EQ(ok.kind, AuthOutcome::Kind::ok);
  EXPECT_EQ(ok.principal.actor, "token:deploy-bot");
  EXPECT_EQ(a.check(bearer(t->token), Permission::status_read, 4999).kind,
            AuthOutcome::Kind::forbidden);
  AuthOutcome expired = a.check(bearer(t->token), Permission::kv_write, 5000);
  EXPECT_EQ(expired.kind, AuthOutcome::Kind::unauthenticated);
  EXPECT_NE(expired.reason.find("expired"), std::string::npos);
  // The right id with a wrong secret.
  std::string forged = t->token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  EXPECT_EQ(a.check(bearer(forged), Permission::kv_write, 0).kind,
            AuthOutcome::Kind::unauthenticated);
  revoked = true;
  EXPECT_EQ(a.check(bearer(t->token), Permission::kv_write, 0).kind,
            AuthOutcome::Kind::unauthenticated);
}

TEST(Auth, TokenRecordsRoundTripAndRefuseGarbage) {
  TokenRecord r{"0123456789abcdef", "n", "viewer", std::string(64, 'b'), 77, "client:ops"};
  std::optional<TokenRecord> back = decode_token_record(r.id, encode_token_record(r));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->name, "n");
  EXPECT_EQ(back->expires_unix_ms, 77u);
  EXPECT_EQ(back->created_by, "client:ops");
  EXPECT_FALSE(decode_token_record("x", "not json").has_value());
  EXPECT_FALSE(decode_token_record("x", R"({"name": "n"})").has_value());
  EXPECT_FALSE(decode_token_record(
                   "x", R"({"name":"n","role":"r","sha256":"s","created_by":"c",)"
                        R"("expires_unix_ms":-1})")
                   .has_value());
}

TEST(Auth, GeneratedTokensParseAndDiffer) {
  Result<NewToken> a = generate_token();
  Result<NewToken> b = generate_token();
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(a->token, b->token);
  std::optional<ParsedToken> p = parse_runtime_token(a->token);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->id, a->id);
  EXPECT_EQ(sha256_hex(p->secret), a->sha256_hex);
  EXPECT_FALSE(parse_runtime_token("anya.XYZ.abc").has_value());
  EXPECT_FALSE(parse_runtime_token(a->token + "0").has_value());
}

TEST(Auth, ValidateNamesTheField) {
  AuthConfig c = config();
  c.client_roles["x"] = "ghost";
  EXPECT_NE(validate(c).message().find("auth.clients.x: unknown role 'ghost'"),
            std::string::npos);
  c = config();
  c.custom_roles["viewer"] = {Permission::kv_read};
  EXPECT_NE(validate(c).message().find("built-in"), std::string::npos);
  c = config();
  c.tokens.push_back(c.tokens[0]);
  c.tokens.back().name = "other";
  EXPECT_NE(validate(c).message().find("listed twice"), std::string::npos);
  c = config();
  c.custom_roles["empty"] = {};
  EXPECT_NE(validate(c).message().find("auth.roles.empty.permissions"), std::string::npos);
  EXPECT_TRUE(validate(config()).is_ok());
}

TEST(Auth, Sha256MatchesAKnownVector) {
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace anya::transport::auth
