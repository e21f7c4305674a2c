#include "sabot/dataflow/expression_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <arrow/scalar.h>
#include <arrow/status.h>

#include "sabot/common/quoted_input.h"
#include "sabot/dataflow/expression_catalog.h"

namespace sabot {

namespace {

enum class TokenKind : uint8_t {
  kIdentifier,        // a bare word (keywords are identifiers the parser recognizes)
  kQuotedIdentifier,  // `name`
  kInteger,
  kFloat,
  kString,
  kSymbol,  // ( ) , [ ] + - * / % = == != <> < <= > >=
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  // The token as written in the input (for error messages).
  std::string_view raw;
  // Identifier name, string value (escapes resolved) or symbol.
  std::string value;
  SourcePosition position;
};

// Error messages quote at most this many bytes of a token.
constexpr size_t kQuotedTokenBytes = 40;

bool IsIdentifierStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsIdentifierChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

arrow::Status ErrorAt(SourcePosition position, const std::string& what) {
  return arrow::Status::Invalid("expression error at ", ToString(position), ": ", what);
}

// Splits the input into tokens, all at once (the input is bounded by ExpressionLimits).
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  arrow::Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      SkipSpace();
      Token token;
      token.position = Position();
      const size_t start = offset_;
      if (offset_ == text_.size()) {
        token.kind = TokenKind::kEnd;
        tokens.push_back(std::move(token));
        return tokens;
      }
      const char c = text_[offset_];
      if (IsIdentifierStart(c)) {
        while (offset_ < text_.size() && IsIdentifierChar(text_[offset_])) Advance();
        token.kind = TokenKind::kIdentifier;
        token.value = std::string(text_.substr(start, offset_ - start));
      } else if (IsDigit(c) || (c == '.' && offset_ + 1 < text_.size() &&
                                IsDigit(text_[offset_ + 1]))) {
        ARROW_RETURN_NOT_OK(LexNumber(&token));
      } else if (c == '\'') {
        ARROW_RETURN_NOT_OK(LexString(&token));
      } else if (c == '`') {
        ARROW_RETURN_NOT_OK(LexQuotedIdentifier(&token));
      } else {
        ARROW_RETURN_NOT_OK(LexSymbol(&token));
      }
      token.raw = text_.substr(start, offset_ - start);
      tokens.push_back(std::move(token));
    }
  }

 private:
  SourcePosition Position() const { return {line_, column_}; }

  void Advance() {
    if (text_[offset_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++offset_;
  }

  void SkipSpace() {
    while (offset_ < text_.size() &&
           (text_[offset_] == ' ' || text_[offset_] == '\t' || text_[offset_] == '\n' ||
            text_[offset_] == '\r')) {
      Advance();
    }
  }

  arrow::Status LexNumber(Token* token) {
    const size_t start = offset_;
    bool is_float = false;
    while (offset_ < text_.size() && IsDigit(text_[offset_])) Advance();
    if (offset_ < text_.size() && text_[offset_] == '.') {
      is_float = true;
      Advance();
      if (offset_ == text_.size() || !IsDigit(text_[offset_])) {
        return Malformed(start, token->position, "a digit after the decimal point");
      }
      while (offset_ < text_.size() && IsDigit(text_[offset_])) Advance();
    }
    if (offset_ < text_.size() && (text_[offset_] == 'e' || text_[offset_] == 'E')) {
      is_float = true;
      Advance();
      if (offset_ < text_.size() && (text_[offset_] == '+' || text_[offset_] == '-')) Advance();
      if (offset_ == text_.size() || !IsDigit(text_[offset_])) {
        return Malformed(start, token->position, "a digit in the exponent");
      }
      while (offset_ < text_.size() && IsDigit(text_[offset_])) Advance();
    }
    if (offset_ < text_.size() &&
        (IsIdentifierChar(text_[offset_]) || text_[offset_] == '.')) {
      return Malformed(start, token->position, "an operator or space after the number");
    }
    token->kind = is_float ? TokenKind::kFloat : TokenKind::kInteger;
    token->value = std::string(text_.substr(start, offset_ - start));
    return arrow::Status::OK();
  }

  arrow::Status Malformed(size_t start, SourcePosition position, const char* expected) {
    size_t end = offset_ < text_.size() ? offset_ + 1 : offset_;
    return ErrorAt(position, "malformed number " +
                                 QuoteInput(text_.substr(start, end - start), kQuotedTokenBytes) +
                                 "; expected " + expected);
  }

  arrow::Status LexString(Token* token) {
    Advance();  // the opening quote
    std::string value;
    while (true) {
      if (offset_ == text_.size()) {
        return ErrorAt(token->position,
                       "unterminated string literal; expected a closing ' before the end");
      }
      const char c = text_[offset_];
      if (c == '\'') {
        Advance();
        break;
      }
      if (c != '\\') {
        value.push_back(c);
        Advance();
        continue;
      }
      const SourcePosition escape_position = Position();
      Advance();
      if (offset_ == text_.size()) {
        return ErrorAt(token->position,
                       "unterminated string literal; expected a closing ' before the end");
      }
      const char e = text_[offset_];
      Advance();
      switch (e) {
        case '\\': value.push_back('\\'); break;
        case '\'': value.push_back('\''); break;
        case '"': value.push_back('"'); break;
        case 'n': value.push_back('\n'); break;
        case 'r': value.push_back('\r'); break;
        case 't': value.push_back('\t'); break;
        case '0': value.push_back('\0'); break;
        case 'x': {
          int hi = offset_ < text_.size() ? HexValue(text_[offset_]) : -1;
          int lo = offset_ + 1 < text_.size() ? HexValue(text_[offset_ + 1]) : -1;
          if (hi < 0 || lo < 0) {
            return ErrorAt(escape_position,
                           "invalid escape in string literal; expected two hex digits after \\x");
          }
          Advance();
          Advance();
          value.push_back(static_cast<char>(hi * 16 + lo));
          break;
        }
        default:
          return ErrorAt(escape_position, "invalid escape " +
                                              QuoteInput(std::string("\\") + e) +
                                              " in string literal; expected one of \\\\ \\' "
                                              "\\\" \\n \\r \\t \\0 \\xNN");
      }
    }
    token->kind = TokenKind::kString;
    token->value = std::move(value);
    return arrow::Status::OK();
  }

  arrow::Status LexQuotedIdentifier(Token* token) {
    Advance();  // the opening backquote
    std::string value;
    while (true) {
      if (offset_ == text_.size()) {
        return ErrorAt(token->position,
                       "unterminated quoted column name; expected a closing ` before the end");
      }
      const char c = text_[offset_];
      Advance();
      if (c == '`') {
        if (offset_ < text_.size() && text_[offset_] == '`') {
          value.push_back('`');
          Advance();
          continue;
        }
        break;
      }
      value.push_back(c);
    }
    if (value.empty()) {
      return ErrorAt(token->position, "empty quoted column name; expected a name between ` `");
    }
    token->kind = TokenKind::kQuotedIdentifier;
    token->value = std::move(value);
    return arrow::Status::OK();
  }

  arrow::Status LexSymbol(Token* token) {
    static constexpr std::string_view kTwoChar[] = {"==", "!=", "<>", "<=", ">="};
    static constexpr std::string_view kOneChar = "(),[]+-*/%=<>";
    const std::string_view rest = text_.substr(offset_);
    for (std::string_view symbol : kTwoChar) {
      if (rest.substr(0, 2) == symbol) {
        Advance();
        Advance();
        token->kind = TokenKind::kSymbol;
        token->value = std::string(symbol);
        return arrow::Status::OK();
      }
    }
    if (kOneChar.find(rest[0]) != std::string_view::npos) {
      Advance();
      token->kind = TokenKind::kSymbol;
      token->value = std::string(rest.substr(0, 1));
      return arrow::Status::OK();
    }
    return ErrorAt(token->position,
                   "unexpected character " + QuoteInput(rest.substr(0, 1)) +
                       "; expected a column, literal, operator or parenthesis");
  }

  std::string_view text_;
  size_t offset_ = 0;
  int32_t line_ = 1;
  int32_t column_ = 1;
};

std::string Describe(const Token& token) {
  if (token.kind == TokenKind::kEnd) return "end of expression";
  return QuoteInput(token.raw, kQuotedTokenBytes);
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, int32_t max_depth)
      : tokens_(std::move(tokens)), max_depth_(max_depth) {}

  arrow::Result<ExprPtr> ParseWhole() {
    ARROW_ASSIGN_OR_RAISE(auto expr, ParseExpr());
    ARROW_RETURN_NOT_OK(ExpectEnd("an operator or the end of the expression"));
    return expr;
  }

  arrow::Result<ProjectionItem> ParseItem() {
    ProjectionItem item;
    ARROW_ASSIGN_OR_RAISE(item.expr, ParseExpr());
    if (IsKeyword(Peek(), "as")) {
      Next();
      const Token& name = Peek();
      if (name.kind == TokenKind::kQuotedIdentifier ||
          (name.kind == TokenKind::kIdentifier && !IsReservedWord(name.value))) {
        item.alias = name.value;
        Next();
      } else {
        return Unexpected(name, "an output column name after 'as' (backquote a reserved word)");
      }
    }
    return item;
  }

  arrow::Result<ProjectionItem> ParseWholeItem() {
    ARROW_ASSIGN_OR_RAISE(auto item, ParseItem());
    ARROW_RETURN_NOT_OK(ExpectEnd("an operator, 'as' or the end of the item"));
    return item;
  }

  arrow::Result<std::vector<ProjectionItem>> ParseList() {
    std::vector<ProjectionItem> items;
    while (true) {
      ARROW_ASSIGN_OR_RAISE(auto item, ParseItem());
      items.push_back(std::move(item));
      if (IsSymbol(Peek(), ",")) {
        Next();
        continue;
      }
      ARROW_RETURN_NOT_OK(ExpectEnd("an operator, 'as', ',' or the end of the list"));
      return items;
    }
  }

 private:
  // Counts one level of nesting for as long as it lives.
  class DepthGuard {
   public:
    explicit DepthGuard(Parser* parser) : parser_(parser) { ++parser_->nesting_; }
    ~DepthGuard() { --parser_->nesting_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Parser* parser_;
  };

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(index_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() {
    const Token& token = tokens_[index_];
    if (index_ + 1 < tokens_.size()) ++index_;
    return token;
  }

  static bool IsKeyword(const Token& token, std::string_view word) {
    return token.kind == TokenKind::kIdentifier && EqualsIgnoreCase(token.value, word);
  }
  static bool IsSymbol(const Token& token, std::string_view symbol) {
    return token.kind == TokenKind::kSymbol && token.value == symbol;
  }

  arrow::Status Unexpected(const Token& token, const std::string& expected) const {
    return ErrorAt(token.position, "unexpected " + Describe(token) + "; expected " + expected);
  }

  arrow::Status ExpectEnd(const std::string& expected) const {
    const Token& token = Peek();
    if (token.kind == TokenKind::kEnd) return arrow::Status::OK();
    if (IsComparison(token) || IsKeyword(token, "is") || IsKeyword(token, "in") ||
        IsKeyword(token, "between") ||
        (IsKeyword(token, "not") &&
         (IsKeyword(Peek(1), "in") || IsKeyword(Peek(1), "between")))) {
      return ErrorAt(token.position, "unexpected " + Describe(token) +
                                         "; comparisons do not chain, add parentheses");
    }
    if (IsKeyword(token, "as")) {
      return ErrorAt(token.position, "unexpected " + Describe(token) +
                                         "; an alias is allowed only in a projection item");
    }
    return Unexpected(token, expected);
  }

  arrow::Status Expect(std::string_view symbol, const std::string& what) {
    if (!IsSymbol(Peek(), symbol)) return Unexpected(Peek(), what);
    Next();
    return arrow::Status::OK();
  }

  arrow::Status ExpectKeyword(std::string_view word, const std::string& what) {
    if (!IsKeyword(Peek(), word)) return Unexpected(Peek(), what);
    Next();
    return arrow::Status::OK();
  }

  arrow::Status CheckNesting(const Token& at) const {
    if (nesting_ > max_depth_) {
      return ErrorAt(at.position, "expression nests deeper than " +
                                      std::to_string(max_depth_) + " levels at " +
                                      Describe(at) + "; expected a flatter expression");
    }
    return arrow::Status::OK();
  }

  arrow::Result<ExprPtr> CheckDepth(ExprPtr node) const {
    if (node->depth > max_depth_) {
      return ErrorAt(node->position, "expression tree deeper than " +
                                         std::to_string(max_depth_) +
                                         " levels; expected a flatter expression");
    }
    return node;
  }

  static bool IsComparison(const Token& token) {
    if (token.kind != TokenKind::kSymbol) return false;
    const std::string& v = token.value;
    return v == "=" || v == "==" || v == "!=" || v == "<>" || v == "<" || v == "<=" ||
           v == ">" || v == ">=";
  }

  static BinaryOp ComparisonOp(const std::string& v) {
    if (v == "=" || v == "==") return BinaryOp::kEq;
    if (v == "!=" || v == "<>") return BinaryOp::kNe;
    if (v == "<") return BinaryOp::kLt;
    if (v == "<=") return BinaryOp::kLe;
    if (v == ">") return BinaryOp::kGt;
    return BinaryOp::kGe;
  }

  // expr := and_expr { OR and_expr }
  arrow::Result<ExprPtr> ParseExpr() {
    DepthGuard guard(this);
    // Blame the token that opened this level: '(' or ',' of a call, list or parenthesis.
    ARROW_RETURN_NOT_OK(CheckNesting(index_ > 0 ? tokens_[index_ - 1] : Peek()));
    ARROW_ASSIGN_OR_RAISE(auto lhs, ParseAnd());
    while (IsKeyword(Peek(), "or")) {
      const SourcePosition position = Next().position;
      ARROW_ASSIGN_OR_RAISE(auto rhs, ParseAnd());
      ARROW_ASSIGN_OR_RAISE(lhs, CheckDepth(MakeBinary(BinaryOp::kOr, lhs, rhs, position)));
    }
    return lhs;
  }

  // and_expr := not_expr { AND not_expr }
  arrow::Result<ExprPtr> ParseAnd() {
    ARROW_ASSIGN_OR_RAISE(auto lhs, ParseNot());
    while (IsKeyword(Peek(), "and")) {
      const SourcePosition position = Next().position;
      ARROW_ASSIGN_OR_RAISE(auto rhs, ParseNot());
      ARROW_ASSIGN_OR_RAISE(lhs, CheckDepth(MakeBinary(BinaryOp::kAnd, lhs, rhs, position)));
    }
    return lhs;
  }

  // not_expr := NOT not_expr | predicate
  arrow::Result<ExprPtr> ParseNot() {
    if (!IsKeyword(Peek(), "not")) return ParsePredicate();
    const Token& op = Next();
    DepthGuard guard(this);
    ARROW_RETURN_NOT_OK(CheckNesting(op));
    ARROW_ASSIGN_OR_RAISE(auto operand, ParseNot());
    return CheckDepth(MakeUnary(UnaryOp::kNot, operand, op.position));
  }

  // predicate := additive [ comparison additive | IS [NOT] NULL
  //                       | [NOT] IN '(' expr {',' expr} ')'
  //                       | [NOT] BETWEEN additive AND additive ]
  arrow::Result<ExprPtr> ParsePredicate() {
    ARROW_ASSIGN_OR_RAISE(auto lhs, ParseAdditive());
    const Token& token = Peek();
    const SourcePosition position = token.position;
    if (IsComparison(token)) {
      const BinaryOp op = ComparisonOp(Next().value);
      ARROW_ASSIGN_OR_RAISE(auto rhs, ParseAdditive());
      return CheckDepth(MakeBinary(op, lhs, rhs, position));
    }
    if (IsKeyword(token, "is")) {
      Next();
      bool negated = false;
      if (IsKeyword(Peek(), "not")) {
        Next();
        negated = true;
      }
      ARROW_RETURN_NOT_OK(ExpectKeyword("null", negated ? "'null' after 'is not'"
                                                        : "'null' or 'not null' after 'is'"));
      return CheckDepth(MakeIsNull(lhs, negated, position));
    }
    bool negated = false;
    if (IsKeyword(token, "not")) {
      if (!IsKeyword(Peek(1), "in") && !IsKeyword(Peek(1), "between")) {
        return Unexpected(Peek(1), "'in' or 'between' after 'not'");
      }
      Next();
      negated = true;
    }
    if (IsKeyword(Peek(), "in")) {
      Next();
      ARROW_RETURN_NOT_OK(Expect("(", "'(' to open the list after 'in'"));
      std::vector<ExprPtr> list;
      while (true) {
        ARROW_ASSIGN_OR_RAISE(auto item, ParseExpr());
        list.push_back(std::move(item));
        if (IsSymbol(Peek(), ",")) {
          Next();
          continue;
        }
        ARROW_RETURN_NOT_OK(Expect(")", "',' or ')' in the list after 'in'"));
        break;
      }
      return CheckDepth(MakeIn(lhs, std::move(list), negated, position));
    }
    if (IsKeyword(Peek(), "between")) {
      Next();
      ARROW_ASSIGN_OR_RAISE(auto low, ParseAdditive());
      ARROW_RETURN_NOT_OK(ExpectKeyword("and", "'and' between the bounds of 'between'"));
      ARROW_ASSIGN_OR_RAISE(auto high, ParseAdditive());
      return CheckDepth(MakeBetween(lhs, low, high, negated, position));
    }
    return lhs;
  }

  // additive := multiplicative { ('+' | '-') multiplicative }
  arrow::Result<ExprPtr> ParseAdditive() {
    ARROW_ASSIGN_OR_RAISE(auto lhs, ParseMultiplicative());
    while (IsSymbol(Peek(), "+") || IsSymbol(Peek(), "-")) {
      const Token& op = Next();
      const BinaryOp binary = op.value == "+" ? BinaryOp::kAdd : BinaryOp::kSubtract;
      ARROW_ASSIGN_OR_RAISE(auto rhs, ParseMultiplicative());
      ARROW_ASSIGN_OR_RAISE(lhs, CheckDepth(MakeBinary(binary, lhs, rhs, op.position)));
    }
    return lhs;
  }

  // multiplicative := unary { ('*' | '/' | '%') unary }
  arrow::Result<ExprPtr> ParseMultiplicative() {
    ARROW_ASSIGN_OR_RAISE(auto lhs, ParseUnary());
    while (IsSymbol(Peek(), "*") || IsSymbol(Peek(), "/") || IsSymbol(Peek(), "%")) {
      const Token& op = Next();
      const BinaryOp binary = op.value == "*"   ? BinaryOp::kMultiply
                              : op.value == "/" ? BinaryOp::kDivide
                                                : BinaryOp::kModulo;
      ARROW_ASSIGN_OR_RAISE(auto rhs, ParseUnary());
      ARROW_ASSIGN_OR_RAISE(lhs, CheckDepth(MakeBinary(binary, lhs, rhs, op.position)));
    }
    return lhs;
  }

  // unary := '-' unary | primary. A '-' directly before a number literal is part of the literal
  // (so -9223372036854775808 is an int64 and -0.0 a negative zero).
  arrow::Result<ExprPtr> ParseUnary() {
    if (!IsSymbol(Peek(), "-")) return ParsePrimary();
    const Token& op = Next();
    if (Peek().kind == TokenKind::kInteger || Peek().kind == TokenKind::kFloat) {
      return ParseNumber(Next(), /*negative=*/true, op.position);
    }
    DepthGuard guard(this);
    ARROW_RETURN_NOT_OK(CheckNesting(op));
    ARROW_ASSIGN_OR_RAISE(auto operand, ParseUnary());
    return CheckDepth(MakeUnary(UnaryOp::kNegate, operand, op.position));
  }

  arrow::Result<ExprPtr> ParseNumber(const Token& token, bool negative,
                                     SourcePosition position) {
    const std::string& digits = token.value;
    if (token.kind == TokenKind::kInteger) {
      uint64_t magnitude = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
      const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) +
                             (negative ? 1 : 0);
      if (ec != std::errc() || end != digits.data() + digits.size() || magnitude > limit) {
        return ErrorAt(position, "integer literal " + QuoteInput(token.raw, kQuotedTokenBytes) +
                                     " out of range; expected a value that fits in int64 "
                                     "(write a float literal, e.g. 1.0e20, for larger values)");
      }
      const int64_t value = negative ? static_cast<int64_t>(0 - magnitude)
                                     : static_cast<int64_t>(magnitude);
      return MakeInt64Literal(value, position);
    }
    double value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end != digits.data() + digits.size() || !std::isfinite(value)) {
      return ErrorAt(position, "float literal " + QuoteInput(token.raw, kQuotedTokenBytes) +
                                   " out of range; expected a finite float64");
    }
    return MakeFloat64Literal(negative ? -value : value, position);
  }

  // A type name at the current token: NAME or NAME '[' UNIT ']'. Canonical spelling.
  arrow::Result<std::string> ParseTypeName(const std::string& context) {
    const Token& base = Peek();
    if (base.kind != TokenKind::kIdentifier) {
      return Unexpected(base, "a type name " + context + " (one of " + AllowedTypeNames() + ")");
    }
    Next();
    std::string unit;
    if (TypeTakesUnit(base.value) && IsSymbol(Peek(), "[")) {
      Next();
      const Token& unit_token = Peek();
      if (unit_token.kind != TokenKind::kIdentifier) {
        return Unexpected(unit_token, "a time unit (s, ms, us or ns) inside [ ]");
      }
      unit = unit_token.value;
      Next();
      ARROW_RETURN_NOT_OK(Expect("]", "']' after the time unit"));
    }
    auto canonical = CanonicalTypeName(base.value, unit);
    if (!canonical) {
      return ErrorAt(base.position, "unknown type " + Describe(base) +
                                        (unit.empty() ? "" : "[" + unit + "]") +
                                        "; expected one of " + AllowedTypeNames());
    }
    return *canonical;
  }

  // Is the current identifier the start of a typed literal (TYPE 'text')?
  bool AtTypedLiteral() const {
    const Token& token = Peek();
    if (token.kind != TokenKind::kIdentifier) return false;
    if (Peek(1).kind == TokenKind::kString) {
      return CanonicalTypeName(token.value, "").has_value();
    }
    return TypeTakesUnit(token.value) && IsSymbol(Peek(1), "[") &&
           Peek(2).kind == TokenKind::kIdentifier && IsSymbol(Peek(3), "]") &&
           Peek(4).kind == TokenKind::kString;
  }

  arrow::Result<ExprPtr> ParseTypedLiteral() {
    const Token& start = Peek();
    ARROW_ASSIGN_OR_RAISE(auto type_name, ParseTypeName("before the literal"));
    const Token& text = Next();
    ARROW_ASSIGN_OR_RAISE(auto type, TypeFromCanonicalName(type_name));
    auto scalar = arrow::Scalar::Parse(type, text.value);
    if (!scalar.ok()) {
      return ErrorAt(text.position, "invalid " + type_name + " literal " +
                                        QuoteInput(text.value, kQuotedTokenBytes) +
                                        "; expected a value of that type");
    }
    return MakeTypedLiteral(std::move(type_name), text.value, start.position);
  }

  arrow::Result<ExprPtr> ParseInterval() {
    const Token& start = Next();  // 'interval'
    const Token& count = Next();
    ARROW_ASSIGN_OR_RAISE(auto number, ParseNumber(count, false, count.position));
    const Token& unit = Peek();
    std::optional<std::string> canonical;
    if (unit.kind == TokenKind::kIdentifier) canonical = CanonicalIntervalUnit(unit.value);
    if (!canonical) {
      return Unexpected(unit, "an interval unit (nanoseconds, microseconds, milliseconds, "
                              "seconds, minutes, hours or days) after the count");
    }
    Next();
    auto scalar = IntervalScalar(number->int_value, *canonical);
    if (!scalar.ok()) return ErrorAt(start.position, scalar.status().message());
    return MakeIntervalLiteral(number->int_value, *canonical, start.position);
  }

  arrow::Result<ExprPtr> ParseCall() {
    const Token& name = Next();
    Next();  // '('
    const FunctionSpec* spec = FindFunction(name.value);
    if (spec == nullptr) {
      return ErrorAt(name.position, "unknown function " + Describe(name) +
                                        "; expected one of " + AllowedFunctionNames());
    }
    std::vector<ExprPtr> args;
    std::vector<SourcePosition> positions;
    if (!IsSymbol(Peek(), ")")) {
      while (true) {
        positions.push_back(Peek().position);
        ARROW_ASSIGN_OR_RAISE(auto arg, ParseExpr());
        args.push_back(std::move(arg));
        if (IsSymbol(Peek(), ",")) {
          Next();
          continue;
        }
        ARROW_RETURN_NOT_OK(Expect(")", "',' or ')' in the arguments of " +
                                            std::string(spec->name)));
        break;
      }
    } else {
      Next();
    }
    const int count = static_cast<int>(args.size());
    if (count < spec->min_args || (spec->max_args >= 0 && count > spec->max_args)) {
      std::string expected;
      if (spec->max_args < 0) {
        expected = "at least " + std::to_string(spec->min_args);
      } else if (spec->min_args == spec->max_args) {
        expected = std::to_string(spec->min_args);
      } else {
        expected = std::to_string(spec->min_args) + " to " + std::to_string(spec->max_args);
      }
      return ErrorAt(name.position, "function " + std::string(spec->name) + " called with " +
                                        std::to_string(count) + " argument" +
                                        (count == 1 ? "" : "s") + "; expected " + expected +
                                        ": " + std::string(spec->signature));
    }
    for (size_t i = 0; i < args.size(); ++i) {
      const ArgRule rule = ArgRuleAt(*spec, i);
      const ExprNode& arg = *args[i];
      const bool is_literal = arg.kind == ExprKind::kLiteral;
      if (rule == ArgRule::kIntLiteral &&
          !(is_literal && arg.literal_kind == LiteralKind::kInt64)) {
        return ErrorAt(positions[i], "argument " + std::to_string(i + 1) + " of " +
                                         std::string(spec->name) +
                                         " must be an integer literal: " +
                                         std::string(spec->signature));
      }
      if (rule == ArgRule::kStringLiteral &&
          !(is_literal && arg.literal_kind == LiteralKind::kString)) {
        return ErrorAt(positions[i], "argument " + std::to_string(i + 1) + " of " +
                                         std::string(spec->name) +
                                         " must be a string literal: " +
                                         std::string(spec->signature));
      }
    }
    return CheckDepth(MakeCall(std::string(spec->name), std::move(args), name.position));
  }

  arrow::Result<ExprPtr> ParseCast() {
    const Token& start = Next();  // 'cast'
    ARROW_RETURN_NOT_OK(Expect("(", "'(' after 'cast'"));
    ARROW_ASSIGN_OR_RAISE(auto operand, ParseExpr());
    ARROW_RETURN_NOT_OK(ExpectKeyword("as", "'as' and a type name in cast(x as type)"));
    ARROW_ASSIGN_OR_RAISE(auto type_name, ParseTypeName("after 'as'"));
    ARROW_RETURN_NOT_OK(Expect(")", "')' to close cast(x as type)"));
    return CheckDepth(MakeCast(operand, std::move(type_name), start.position));
  }

  arrow::Result<ExprPtr> ParseCase() {
    const Token& start = Next();  // 'case'
    std::vector<ExprPtr> args;
    bool has_else = false;
    if (!IsKeyword(Peek(), "when")) {
      return Unexpected(Peek(), "'when' after 'case'");
    }
    while (IsKeyword(Peek(), "when")) {
      Next();
      ARROW_ASSIGN_OR_RAISE(auto condition, ParseExpr());
      ARROW_RETURN_NOT_OK(ExpectKeyword("then", "'then' after the condition of 'when'"));
      ARROW_ASSIGN_OR_RAISE(auto value, ParseExpr());
      args.push_back(std::move(condition));
      args.push_back(std::move(value));
    }
    if (IsKeyword(Peek(), "else")) {
      Next();
      ARROW_ASSIGN_OR_RAISE(auto value, ParseExpr());
      args.push_back(std::move(value));
      has_else = true;
    }
    ARROW_RETURN_NOT_OK(ExpectKeyword("end", "'when', 'else' or 'end' in the case expression"));
    return CheckDepth(MakeCase(std::move(args), has_else, start.position));
  }

  // primary := literal | column | call | cast | case | '(' expr ')'
  arrow::Result<ExprPtr> ParsePrimary() {
    const Token& token = Peek();
    switch (token.kind) {
      case TokenKind::kInteger:
      case TokenKind::kFloat:
        Next();
        return ParseNumber(token, false, token.position);
      case TokenKind::kString:
        Next();
        return MakeStringLiteral(token.value, token.position);
      case TokenKind::kQuotedIdentifier:
        Next();
        return MakeColumn(token.value, token.position);
      case TokenKind::kSymbol:
        if (token.value == "(") {
          Next();
          ARROW_ASSIGN_OR_RAISE(auto inner, ParseExpr());
          ARROW_RETURN_NOT_OK(Expect(")", "')' to close the parenthesis"));
          return inner;
        }
        break;
      case TokenKind::kIdentifier: {
        if (IsKeyword(token, "true") || IsKeyword(token, "false")) {
          Next();
          return MakeBoolLiteral(IsKeyword(token, "true"), token.position);
        }
        if (IsKeyword(token, "null")) {
          Next();
          return MakeNullLiteral(token.position);
        }
        if (IsKeyword(token, "cast") && IsSymbol(Peek(1), "(")) return ParseCast();
        if (IsKeyword(token, "case")) return ParseCase();
        if (IsKeyword(token, "interval") && Peek(1).kind == TokenKind::kInteger) {
          return ParseInterval();
        }
        if (IsReservedWord(token.value)) break;
        if (IsSymbol(Peek(1), "(")) return ParseCall();
        if (AtTypedLiteral()) return ParseTypedLiteral();
        Next();
        return MakeColumn(token.value, token.position);
      }
      case TokenKind::kEnd:
        break;
    }
    return Unexpected(token,
                      "an operand (a column, literal, function call or parenthesized "
                      "expression)");
  }

  std::vector<Token> tokens_;
  size_t index_ = 0;
  int32_t nesting_ = 0;
  int32_t max_depth_;
};

arrow::Result<Parser> MakeParser(std::string_view text, const ExpressionLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return arrow::Status::Invalid("expression error: expression is ", text.size(),
                                  " bytes long; expected at most ", limits.max_bytes);
  }
  ARROW_ASSIGN_OR_RAISE(auto tokens, Lexer(text).Run());
  if (tokens.size() == 1) {
    return arrow::Status::Invalid("expression error at 1:1: empty expression; expected an "
                                  "operand (a column, literal, function call or parenthesized "
                                  "expression)");
  }
  const int32_t depth = std::clamp(limits.max_depth, 1, kMaxExpressionDepth);
  return Parser(std::move(tokens), depth);
}

}  // namespace

arrow::Result<ExprPtr> ParseExpression(std::string_view text, const ExpressionLimits& limits) {
  ARROW_ASSIGN_OR_RAISE(auto parser, MakeParser(text, limits));
  return parser.ParseWhole();
}

arrow::Result<ProjectionItem> ParseProjectionItem(std::string_view text,
                                                  const ExpressionLimits& limits) {
  ARROW_ASSIGN_OR_RAISE(auto parser, MakeParser(text, limits));
  return parser.ParseWholeItem();
}

arrow::Result<std::vector<ProjectionItem>> ParseProjectionList(std::string_view text,
                                                               const ExpressionLimits& limits) {
  ARROW_ASSIGN_OR_RAISE(auto parser, MakeParser(text, limits));
  return parser.ParseList();
}

}  // namespace sabot
