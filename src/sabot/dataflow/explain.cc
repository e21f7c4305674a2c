#include "sabot/dataflow/explain.h"

#include <sstream>

#include "sabot/common/quoted_input.h"

namespace sabot {

namespace {

// Expressions and paths are quoted whole, up to this many bytes.
constexpr size_t kMaxExplainQuote = 200;
constexpr size_t kMaxExplainLine = 4096;

std::string Quote(const std::string& text) { return QuoteInput(text, kMaxExplainQuote); }

// The items, each with unprintable bytes escaped, joined by `separator`.
std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += SanitizeMessage(items[i], kMaxExplainQuote);  // column names are the user's text
  }
  return out;
}

std::string Columns(const std::vector<NamedExpression>& columns) {
  std::vector<std::string> parts;
  for (const NamedExpression& c : columns) parts.push_back(c.name + " = " + Quote(c.expression));
  return Join(parts);
}

std::string EventTime(const std::optional<EventTimeSpec>& et) {
  if (!et) return "";
  return ", event time " + et->column + " (out of order <= " +
         std::to_string(et->max_out_of_orderness.count()) + " ms)";
}

// The kind and its main parameters, e.g. "aggregate sum(amount) AS sum_amount".
std::string Describe(const OperatorSpec& op) {
  std::string kind(OperatorKindName(op.kind()));
  return std::visit(
      [&](const auto& p) -> std::string {
        using P = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<P, GeneratorSourceParams>) {
          std::string rows = p.rows == 0 ? "unbounded" : std::to_string(p.rows) + " rows";
          std::string rate = p.rows_per_second > 0
                                 ? ", " + std::to_string(static_cast<int64_t>(p.rows_per_second)) +
                                       " rows/s"
                                 : "";
          return kind + " " + std::string(GeneratorTableName(p.table)) + " table, " + rows + rate +
                 EventTime(p.event_time);
        } else if constexpr (std::is_same_v<P, FileSourceParams>) {
          std::vector<std::string> paths;
          for (const std::string& path : p.paths) paths.push_back(Quote(path));
          return kind + " " + Join(paths) + EventTime(p.event_time);
        } else if constexpr (std::is_same_v<P, TableSourceParams>) {
          return kind + " " + Quote(p.table) + " (in memory, batches of <= " +
                 std::to_string(p.batch_rows) + " rows)" + EventTime(p.event_time);
        } else if constexpr (std::is_same_v<P, MapParams> || std::is_same_v<P, ProjectParams>) {
          return kind + " " + Columns(p.columns);
        } else if constexpr (std::is_same_v<P, FilterParams>) {
          return kind + " " + Quote(p.predicate);
        } else if constexpr (std::is_same_v<P, KeyByParams>) {
          return kind + "(" + Join(p.keys) + ")  folded into the next edge";
        } else if constexpr (std::is_same_v<P, WindowParams>) {
          std::string out = kind + " " + std::string(WindowTypeName(p.type));
          if (p.type == WindowType::kSession) {
            out += " gap " + std::to_string(p.gap.count()) + " ms";
          } else {
            out += " size " + std::to_string(p.size.count()) + " ms";
          }
          if (p.type == WindowType::kSliding) {
            out += " slide " + std::to_string(p.slide.count()) + " ms";
          }
          if (p.time == TimeDomain::kProcessingTime) return out + " on processing time";
          if (!p.time_column.empty()) out += " on " + Quote(p.time_column);
          if (p.allowed_lateness.count() != 0) {
            out += " allowed lateness " + std::to_string(p.allowed_lateness.count()) + " ms";
          }
          if (p.late_output) {
            out += " late rows to " + std::string(FileFormatName(p.late_output->format)) + " " +
                   Quote(p.late_output->directory);
          }
          return out;
        } else if constexpr (std::is_same_v<P, AggregateParams>) {
          std::vector<std::string> parts;
          for (const AggregateSpec& a : p.aggregates) {
            parts.push_back(std::string(AggregateFunctionName(a.function)) + "(" +
                            (a.column.empty() ? "*" : a.column) + ") AS " +
                            AggregateOutputName(a));
          }
          return kind + " " + Join(parts);
        } else if constexpr (std::is_same_v<P, JoinParams>) {
          std::string out = kind + " " + std::string(JoinTypeName(p.how)) + " on (" +
                            Join(p.left_keys) + ") = (" + Join(p.right_keys) + ")";
          if (p.broadcast != JoinBroadcast::kNone) {
            out += " broadcast " + std::string(JoinBroadcastName(p.broadcast));
          }
          if (p.time == JoinTime::kWindow) {
            out += " window " + std::to_string(p.window.count()) + " ms on time (" + p.left_time +
                   ") = (" + p.right_time + ")";
          } else if (p.time == JoinTime::kInterval) {
            out += " interval " + p.right_time + " in [" + p.left_time + " - " +
                   std::to_string(p.before.count()) + " ms, " + p.left_time + " + " +
                   std::to_string(p.after.count()) + " ms]";
          }
          return out;
        } else if constexpr (std::is_same_v<P, FileSinkParams>) {
          return kind + " " + Quote(p.directory);
        } else if constexpr (std::is_same_v<P, ConsoleSinkParams>) {
          return kind + " first " + std::to_string(p.max_rows) + " rows";
        } else if constexpr (std::is_same_v<P, FunctionMapParams>) {
          return kind + " " + Quote(p.function) + " (provided when the job runs)";
        } else {
          return kind;
        }
      },
      op.params);
}

std::string Endpoint(const OperatorSpec& op) {
  return op.name + "[" + std::to_string(op.parallelism) + "]";
}

std::string EdgeTypeText(const GraphEdge& edge) {
  std::string out(EdgeTypeName(edge.type));
  if (!edge.keys.empty()) out += "(" + Join(edge.keys) + ")";
  if (edge.type == EdgeType::kRange) {
    out += edge.boundaries.empty() ? " sampled boundaries"
                                   : " " + std::to_string(edge.boundaries.size()) + " boundaries";
  }
  return out;
}

}  // namespace

std::string Explain(const ExecutionGraph& graph) {
  const LogicalPlan& plan = graph.plan();
  std::ostringstream out;
  out << "plan: " << plan.operators().size() << " operators, " << plan.edges().size()
      << " edges; shuffle mode " << ShuffleModeName(plan.options().shuffle_mode) << ", chaining "
      << (plan.options().chaining ? "on" : "off");
  if (plan.options().idle_timeout.count() != 0) {
    out << ", idle timeout " << plan.options().idle_timeout.count() << " ms";
  }
  out << "\n";
  out << "operators:\n";
  for (OperatorId id : plan.topological_order()) {
    const OperatorSpec& op = *plan.FindOperator(id);
    std::string endpoint = op.kind() == OperatorKind::kKeyBy ? op.name : Endpoint(op);
    out << "  " << endpoint << "  " << Describe(op) << "\n";
  }
  out << "chains: " << graph.chains().size() << ", tasks: " << graph.tasks().size() << "\n";
  for (const ChainSpec& chain : graph.chains()) {
    std::vector<std::string> names;
    for (OperatorId id : chain.operators) names.push_back(plan.FindOperator(id)->name);
    out << "  chain " << chain.id << "  " << chain.parallelism
        << (chain.parallelism == 1 ? " task   " : " tasks  ") << Join(names, " -> ") << "\n";
  }
  out << "edges: " << graph.edges().size() << ", shuffles: " << graph.shuffle_edges().size()
      << "\n";
  for (const GraphEdge& edge : graph.edges()) {
    const OperatorSpec& from = *plan.FindOperator(edge.from_operator);
    const OperatorSpec& to = *plan.FindOperator(edge.to_operator);
    out << "  " << Endpoint(from) << " -> " << Endpoint(to);
    if (to.kind() == OperatorKind::kJoin) out << (edge.input == 0 ? " (left)" : " (right)");
    out << "  " << EdgeTypeText(edge);
    if (edge.chained) {
      out << " (chained)";
    } else {
      out << " " << edge.num_writers << "x" << edge.num_partitions << "  shuffle "
          << edge.shuffle_id;
    }
    if (edge.key_by) out << " (key_by " << plan.FindOperator(*edge.key_by)->name << ")";
    out << "\n";
  }
  // Column names and keys are the user's text: escape anything unprintable, line by line.
  std::string text = out.str();
  std::string result;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    result += SanitizeMessage(std::string_view(text).substr(start, end - start), kMaxExplainLine);
    result += '\n';
    start = end + 1;
  }
  return result;
}

}  // namespace sabot
