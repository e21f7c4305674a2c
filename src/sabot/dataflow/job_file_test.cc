#include "sabot/dataflow/job_file.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

// Checks of messages, printing the message when they fail.
::testing::AssertionResult HasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}
::testing::AssertionResult StartsWith(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not start with '" << prefix
                                       << "'";
}
using std::chrono::milliseconds;

arrow::Result<JobFile> Parse(std::string_view yaml, const JobFileOverrides& overrides = {}) {
  return ParseJobFile(yaml, "job.yaml", "/jobs", overrides);
}

// The error message of a job file that must be rejected.
std::string ErrorOf(std::string_view yaml, const JobFileOverrides& overrides = {}) {
  auto job = Parse(yaml, overrides);
  if (job.ok()) return "(accepted)";
  EXPECT_TRUE(job.status().IsInvalid()) << job.status().ToString();
  return job.status().message();
}

// ---------------------------------------------------------------------------------------------
// Plans read from job files.

TEST(JobFileTest, SeedPipelineEqualsTheBuilderPlan) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(
job: seeds
operators:
  - generator_source:
      table: transactions
      event_time: {column: event_time, max_out_of_orderness: 5s}
    parallelism: 10
  - map:
      columns: {amount_usd: "amount * 1.1"}
  - filter: amount > 0
  - key_by: [user_id]
  - window: {size: 5m}
  - aggregate: [sum(amount), count(*)]
    parallelism: 5
  - console_sink:
)"));
  GeneratorSourceParams source;
  source.table = GeneratorTable::kTransactions;
  source.event_time = EventTimeSpec{"event_time", std::chrono::seconds(5)};
  PlanBuilder b;
  b.Source(source, 10)
      .Map("amount_usd", "amount * 1.1")
      .Filter("amount > 0")
      .KeyBy({"user_id"})
      .Window(Tumbling(std::chrono::minutes(5)))
      .Aggregate({Sum("amount"), Count()}, 5)
      .Sink(ConsoleSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan expected, b.Build());
  EXPECT_TRUE(job.plan.Equals(expected));
  EXPECT_EQ(job.name, "seeds");
  // The window took its aggregate's parallelism, as the builder does.
  EXPECT_EQ(job.plan.operators()[4].parallelism, 5);
  EXPECT_EQ(job.operator_locations[0], (JobFileLocation{4, 5}));
  EXPECT_EQ(job.operator_locations[6], (JobFileLocation{15, 5}));
  EXPECT_EQ(job.PlaceOf("map"), "job.yaml:8:5");
  EXPECT_EQ(job.PlaceOf("nope"), "job.yaml");
}

TEST(JobFileTest, FanOutUnionAndPartitioningRequests) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(
operators:
  - name: a
    generator_source: {rows: 1000}
    parallelism: 4
  - name: b
    generator_source: {rows: 10}
  - name: spread
    input: a
    partitioning: rebalance
    parallelism: 2
    map:
      columns: {x: "key + 1"}
  - name: everywhere
    input: b
    partitioning: broadcast
    parallelism: 3
    filter: {predicate: "key >= 0"}
  - name: both
    input: [spread, everywhere]
    partitioning: {hash: [key]}
    collect_sink:
  - name: ranged
    input: a
    partitioning: {range: {keys: [key], boundaries: [10, 20]}}
    parallelism: 3
    parquet_sink: out
)"));
  const LogicalPlan& plan = job.plan;
  ASSERT_EQ(plan.edges().size(), 5u);
  EXPECT_EQ(plan.edges()[0], (EdgeSpec{0, 2, 0, PartitioningRequest::Rebalance()}));
  EXPECT_EQ(plan.edges()[1], (EdgeSpec{1, 3, 0, PartitioningRequest::Broadcast()}));
  EXPECT_EQ(plan.edges()[2], (EdgeSpec{2, 4, 0, PartitioningRequest::Hash({"key"})}));
  EXPECT_EQ(plan.edges()[3], (EdgeSpec{3, 4, 0, PartitioningRequest::Hash({"key"})}));
  EXPECT_EQ(plan.edges()[4],
            (EdgeSpec{0, 5, 0, PartitioningRequest::Range({"key"}, {{int64_t{10}}, {int64_t{20}}})}));
  // The union takes its first input's parallelism.
  EXPECT_EQ(plan.operators()[4].parallelism, 2);
  // Relative paths are resolved against the job file's directory.
  EXPECT_EQ(std::get<FileSinkParams>(plan.operators()[5].params).directory, "/jobs/out");
  ASSERT_OK_AND_ASSIGN(ExecutionGraph graph, ExecutionGraph::Make(plan));
  std::string text = Explain(graph);
  EXPECT_TRUE(HasSubstr(text, "a[4] -> spread[2]  REBALANCE 4x2"));
  EXPECT_TRUE(HasSubstr(text, "b[1] -> everywhere[3]  BROADCAST 1x3"));
}

TEST(JobFileTest, JoinSourcesOptionsAndShorthands) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(
job: join-1
options:
  threads: 3
  memory_budget: 64MiB
  shuffle_mode: blocking
  chaining: false
  lineage_recovery: true
  spill_directory: spill
  progress: false
operators:
  - name: users
    csv_source:
      paths: [users.csv, /abs/more.csv]
      csv: {delimiter: ";", has_header: false}
  - name: orders
    parquet_source: data/orders
    parallelism: 2
  - name: joined
    left: orders
    right: users
    join: {left_keys: [user_id], right_keys: [id], how: left}
    parallelism: 2
  - project:
      columns: ["user_id", "amount * 2 as doubled", "name"]
  - ipc_sink: {directory: /tmp/out/}
)"));
  EXPECT_EQ(job.name, "join-1");
  EXPECT_EQ(job.options.threads, 3);
  EXPECT_EQ(job.options.memory_budget_bytes, 64 << 20);
  EXPECT_EQ(job.options.spill_directory, "/jobs/spill");
  EXPECT_FALSE(job.options.progress);
  EXPECT_EQ(job.plan.options().shuffle_mode, ShuffleMode::kBlocking);
  EXPECT_FALSE(job.plan.options().chaining);
  EXPECT_TRUE(job.plan.options().lineage_recovery);
  const auto& ops = job.plan.operators();
  const auto& csv = std::get<FileSourceParams>(ops[0].params);
  EXPECT_EQ(csv.format, FileFormat::kCsv);
  EXPECT_EQ(csv.paths, (std::vector<std::string>{"/jobs/users.csv", "/abs/more.csv"}));
  EXPECT_EQ(csv.csv.delimiter, ';');
  EXPECT_FALSE(csv.csv.has_header);
  EXPECT_EQ(std::get<FileSourceParams>(ops[1].params).paths,
            std::vector<std::string>{"/jobs/data/orders"});
  const auto& join = std::get<JoinParams>(ops[2].params);
  EXPECT_EQ(join.how, JoinType::kLeft);
  ASSERT_EQ(job.plan.InputEdges(2).size(), 2u);
  EXPECT_EQ(job.plan.edges()[job.plan.InputEdges(2)[0]].from, 1);  // left: orders
  EXPECT_EQ(job.plan.edges()[job.plan.InputEdges(2)[1]].from, 0);  // right: users
  EXPECT_EQ(std::get<ProjectParams>(ops[3].params).columns,
            (std::vector<NamedExpression>{
                {"user_id", "user_id"}, {"doubled", "amount * 2"}, {"name", "name"}}));
  EXPECT_EQ(ops[3].name, "project");
  EXPECT_EQ(std::get<FileSinkParams>(ops[4].params).directory, "/tmp/out");
}

TEST(JobFileTest, TheJobIsNamedAfterItsFileByDefault) {
  constexpr std::string_view kJob = "operators:\n  - generator_source:\n  - collect_sink:\n";
  ASSERT_OK_AND_ASSIGN(JobFile a, ParseJobFile(kJob, "dir/fan-out.yaml", "/"));
  EXPECT_EQ(a.name, "fan-out");
  ASSERT_OK_AND_ASSIGN(JobFile b, ParseJobFile(kJob, "my job.v2.yml", "/"));
  EXPECT_EQ(b.name, "my_job_v2");
  ASSERT_OK_AND_ASSIGN(JobFile c, ParseJobFile(kJob, "-x.yaml", "/"));
  EXPECT_EQ(c.name, "job");
  ASSERT_OK_AND_ASSIGN(JobFile d, ParseJobFile(kJob, "abcdefghijklmnopqrstuvwxyz.yaml", "/"));
  EXPECT_EQ(d.name, "abcdefghijklmnopqrstuvwx");
}

TEST(JobFileTest, DefaultNamesAvoidExplicitOnes) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(
operators:
  - generator_source:
  - map: {columns: {a: "1"}}
    name: map_2
  - map: {columns: {b: "2"}}
  - map: {columns: {c: "3"}}
  - collect_sink:
)"));
  std::vector<std::string> names;
  for (const auto& op : job.plan.operators()) names.push_back(op.name);
  EXPECT_EQ(names, (std::vector<std::string>{"generator_source", "map_2", "map", "map_3",
                                             "collect_sink"}));
}

TEST(JobFileTest, ParallelismOverridesAreFollowedByInheritingOperators) {
  constexpr std::string_view kJob = R"(
operators:
  - name: source
    generator_source:
  - name: m
    map: {columns: {a: "1"}}
  - name: sink
    collect_sink:
    parallelism: 2
)";
  JobFileOverrides overrides;
  overrides.parallelism = {{"source", 4}, {"sink", 7}};
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(kJob, overrides));
  EXPECT_EQ(job.plan.operators()[0].parallelism, 4);
  EXPECT_EQ(job.plan.operators()[1].parallelism, 4);
  EXPECT_EQ(job.plan.operators()[2].parallelism, 7);
  overrides.parallelism = {{"nope", 2}};
  EXPECT_EQ(ErrorOf(kJob, overrides),
            "job.yaml: parallelism override for 'nope': the job has no such operator "
            "(operators: source, m, sink)");
  overrides.parallelism = {{"m", 0}};
  EXPECT_TRUE(HasSubstr(ErrorOf(kJob, overrides), "between 1 and 1024, got 0"));
}

// ---------------------------------------------------------------------------------------------
// Errors: each names the file, the line and column of the node at fault, and the operator.

TEST(JobFileErrorTest, YamlSyntax) {
  EXPECT_TRUE(StartsWith(ErrorOf("operators:\n  - map: {columns: [\n"), "job.yaml:3:1: YAML syntax error: "));
  EXPECT_TRUE(StartsWith(ErrorOf("operators:\n  - a: b\n - c\n"), "job.yaml:3:"));
}

TEST(JobFileErrorTest, NotAJobFile) {
  EXPECT_EQ(ErrorOf("- a\n- b\n"), "job.yaml:1:1: a job file is a map with operators: (and "
                                   "optionally job: and options:), got a list");
  EXPECT_EQ(ErrorOf("job: x\n"), "job.yaml:1:1: the job file has no operators: list");
  EXPECT_EQ(ErrorOf("job: x\noperators: []\n"),
            "job.yaml:2:12: operators: must be a non-empty list, got a list");
  EXPECT_EQ(ErrorOf("job: a.b\noperators: [{generator_source: }]\n"),
            "job.yaml:1:6: job: the name must be 1 to 24 letters, digits, '_' or '-' (not "
            "first), got 'a.b'");
}

TEST(JobFileErrorTest, UnknownKeysListTheValidOnes) {
  EXPECT_EQ(ErrorOf("jobs: x\noperators: []\n"),
            "job.yaml:1:1: unknown key 'jobs' in the job file (valid keys: job, options, "
            "operators)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - map:
      colums: {a: "1"}
  - collect_sink:
)"),
            "job.yaml:4:7: operator 'map': unknown key 'colums' in the parameters of map "
            "(valid keys: columns)");
  EXPECT_TRUE(StartsWith(ErrorOf(R"(operators:
  - generator_source:
    paralelism: 2
)"), "job.yaml:3:5: operators entry 1: unknown key 'paralelism' in an "
                         "operator entry (valid keys: name, parallelism, input, left, right, "
                         "partitioning, generator_source, parquet_source,"));
  // A parameter next to the kind instead of inside it: the error names the operator and says
  // where parameters go.
  std::string misplaced = ErrorOf(R"(operators:
  - parquet_source: in/
    name: clicks
    event_time: ts
)");
  EXPECT_TRUE(StartsWith(misplaced, "job.yaml:4:5: operator 'clicks' (operators entry 1): "
                                    "unknown key 'event_time' in an operator entry (valid keys: "))
      << misplaced;
  EXPECT_NE(misplaced.find("an operator's parameters go inside its kind's map"),
            std::string::npos) << misplaced;
  EXPECT_EQ(misplaced.find("table_source"), std::string::npos) << misplaced;
  EXPECT_EQ(ErrorOf("options: {thread: 2}\noperators: [{generator_source: }]\n"),
            "job.yaml:1:11: options: unknown key 'thread' in options (valid keys: threads, "
            "memory_budget, shuffle_mode, chaining, spill_directory, progress, state_budget, "
            "idle_timeout, checkpoint, lineage_recovery)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source: {rows: 1}
  - parquet_sink: {directory: out, csv: {delimiter: ";"}}
)"),
            "job.yaml:3:36: operator 'parquet_sink': unknown key 'csv' in the parameters of "
            "parquet_sink (valid keys: directory)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source: {rows: 1, rows: 2}
)"),
            "job.yaml:2:33: operator 'generator_source': key 'rows' appears twice");
}

TEST(JobFileErrorTest, KindKeys) {
  EXPECT_TRUE(StartsWith(ErrorOf("operators:\n  - name: x\n"), "job.yaml:2:5: operator 'x' (operators entry 1): the entry names no operator kind "
                         "(one of: generator_source,"));
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n    map: {columns: {a: '1'}}\n"),
            "job.yaml:3:5: operators entry 1: an operator has one kind, but this entry has both "
            "'generator_source' and 'map'");
  EXPECT_EQ(ErrorOf("operators:\n  - 5\n"),
            "job.yaml:2:5: operators entry 1: an operator must be a map with one kind key (such "
            "as map: or parquet_source:), got a scalar");
}

// A job file cannot carry an in-memory table: table_source is refused at its key, and a plan
// holding one cannot be written as a job file.
TEST(JobFileErrorTest, TableSourceIsRefused) {
  EXPECT_EQ(ErrorOf("operators:\n  - table_source: {table: t}\n  - collect_sink: {}\n"),
            "job.yaml:2:5: operators entry 1: table_source reads an in-memory table that the "
            "program running the plan provides (the Python API, BindOptions::tables); a job file "
            "cannot provide one: read the data with parquet_source or ipc_source");
  PlanBuilder b;
  b.Source(TableSourceParams{"t"}, 1, "src").Sink(CollectSinkParams{}, {}, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_RAISES_WITH(Invalid, "operator 'src': table_source reads an in-memory table",
                     FormatJobFile("t", plan).status());
}

TEST(JobFileErrorTest, WrongTypes) {
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source: {rows: many}\n"),
            "job.yaml:2:30: operator 'generator_source': rows must be an integer, got 'many'");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source: {rows: -1}\n"),
            "job.yaml:2:30: operator 'generator_source': rows must be between 0 and "
            "9223372036854775807, got -1");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n    parallelism: [2]\n"),
            "job.yaml:3:18: operators entry 1: parallelism must be an integer, got a list");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source: {string_key: maybe}\n"),
            "job.yaml:2:36: operator 'generator_source': string_key must be true or false, got "
            "'maybe'");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source: {table: orders}\n"),
            "job.yaml:2:31: operator 'generator_source': unknown generator table 'orders' "
            "(expected one of: shuffle, transactions)");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - map: {columns: [a]}\n"),
            "job.yaml:3:20: operator 'map': columns must be a map of name: expression, got a "
            "list");
  EXPECT_EQ(ErrorOf("options: {memory_budget: 256}\noperators: [{generator_source: }]\n"),
            "job.yaml:1:26: options: memory_budget: bad size '256': a number needs a unit "
            "(write a number and a unit: B, KiB, MiB or GiB, e.g. 256MiB)");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - aggregate: [total(amount)]\n"),
            "job.yaml:3:17: operator 'aggregate': unknown aggregate function 'total' (expected "
            "one of: count, sum, min, max, mean, count_distinct, first, last, approx_median)");
}

TEST(JobFileErrorTest, StateBudget) {
  EXPECT_EQ(ErrorOf("options: {state_budget: 512B}\noperators: [{generator_source: }]\n"),
            "job.yaml:1:25: options: state_budget must be at least 1KiB, got '512B'");
  ASSERT_OK_AND_ASSIGN(JobFile job,
                       Parse("options: {state_budget: 64KiB}\n"
                             "operators: [{generator_source: }, {console_sink: }]\n"));
  EXPECT_EQ(job.options.state_budget_bytes, std::optional<int64_t>(64 << 10));
}

TEST(JobFileErrorTest, BadDurations) {
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source: {table: transactions}
  - key_by: user_id
  - window:
      size: 5 minutes
  - collect_sink:
)"),
            "job.yaml:5:13: operator 'window': size: bad duration '5 minutes': unknown unit "
            "'minutes' (write a number and a unit: ms, s, m or h, e.g. 5s, 250ms, 1m30s)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
      event_time: {column: t, max_out_of_orderness: 500}
  - collect_sink:
)"),
            "job.yaml:3:53: operator 'generator_source': max_out_of_orderness: bad duration "
            "'500': a number needs a unit (write a number and a unit: ms, s, m or h, e.g. 5s, "
            "250ms, 1m30s)");
}

TEST(JobFileErrorTest, ParallelismZero) {
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - map: {columns: {a: "1"}}
    parallelism: 0
  - collect_sink:
)"),
            "job.yaml:4:18: operators entry 2: parallelism must be between 1 and 1024, got 0");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - key_by: k\n    parallelism: 2\n"),
            "job.yaml:4:5: operators entry 2: a key_by has no parallelism of its own (it takes "
            "its input's); remove it");
}

TEST(JobFileErrorTest, Inputs) {
  EXPECT_EQ(ErrorOf(R"(operators:
  - name: src
    generator_source:
  - map: {columns: {a: "1"}}
    input: scr
  - collect_sink:
)"),
            "job.yaml:5:12: operator 'map': unknown input 'scr' (operators: src, collect_sink)");
  EXPECT_EQ(ErrorOf("operators:\n  - map: {columns: {a: '1'}}\n"),
            "job.yaml:2:5: operator 'map': the first operator must be a source (map reads the "
            "output of another operator)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - collect_sink:
  - map: {columns: {a: "1"}}
)"),
            "job.yaml:4:5: operator 'map': the entry before it, 'collect_sink', is a sink and "
            "has no output; name this operator's input with input:");
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n    input: x\n"),
            "job.yaml:3:5: operators entry 1: a source reads no other operator; remove 'input'");
  EXPECT_EQ(ErrorOf(R"(operators:
  - name: a
    generator_source:
  - join: {on: [k]}
    left: a
)"),
            "job.yaml:4:5: operators entry 2: a join needs both left: and right: (operator "
            "names)");
}

TEST(JobFileErrorTest, Cycles) {
  EXPECT_EQ(ErrorOf(R"(operators:
  - name: src
    generator_source:
  - name: a
    input: [src, c]
    map: {columns: {x: "1"}}
  - name: b
    filter: "x > 0"
  - name: c
    map: {columns: {y: "2"}}
  - name: out
    input: c
    collect_sink:
)"),
            "job.yaml:8:5: operator 'b': the job has a cycle: 'b' -> 'c' -> 'a' -> 'b'");
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - name: a
    input: a
    map: {columns: {x: "1"}}
)"),
            "job.yaml:4:12: operator 'a': an operator cannot read itself");
}

TEST(JobFileErrorTest, ExpressionSyntaxErrorsAreAtTheirPlaceInTheFile) {
  // Plain scalar: column of the node plus the column in the expression.
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - filter: amount > > 0\n"),
            "job.yaml:3:22: operator 'filter': predicate: expression error: unexpected '>'; "
            "expected an operand (a column, literal, function call or parenthesized "
            "expression)");
  // Quoted: one more for the quote.
  EXPECT_TRUE(StartsWith(ErrorOf("operators:\n  - generator_source:\n  - map:\n      columns: {y: \"a + (b\"}\n"), "job.yaml:4:27: operator 'map': column 'y': expression error: "));
  // A literal block: the line inside the block.
  EXPECT_TRUE(StartsWith(ErrorOf(R"(operators:
  - generator_source:
  - filter:
      predicate: |
        amount > 0
        and and user_id = 3
  - collect_sink:
)"), "job.yaml:6:13: operator 'filter': predicate: expression error: "));
  EXPECT_TRUE(StartsWith(ErrorOf("operators:\n  - generator_source:\n  - project:\n      columns: [\"a +\"]\n"), "job.yaml:4:21: operator 'project': column: expression error: "));
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - project:\n      columns: [\"a + 1\"]\n"),
            "job.yaml:4:17: operator 'project': the computed column 'a + 1' needs a name: add "
            "'as name'");
}

TEST(JobFileErrorTest, PlanValidationErrorsPointAtTheirNode) {
  // An operator's parallelism.
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - aggregate: [count(*)]
    parallelism: 3
  - collect_sink:
)"),
            "job.yaml:4:18: operator 'aggregate' (id 1): its input is not keyed (put a key_by "
            "before it, or give it parallelism 1), and its parallelism is 3");
  // An edge's partitioning.
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
    parallelism: 2
  - map: {columns: {a: "1"}}
    partitioning: forward
    parallelism: 3
  - collect_sink:
)"),
            "job.yaml:5:19: edge 'generator_source' -> 'map': forward partitioning needs equal "
            "parallelism, but 'generator_source' has 2 and 'map' has 3");
  // A parameter.
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - key_by: [user_id]
  - window:
      type: tumbling
      size: 1m
      slide: 10s
  - aggregate: [count(*)]
  - collect_sink:
)"),
            "job.yaml:7:14: operator 'window' (id 2): parameter 'slide_ms': is not used by a "
            "tumbling window and must be 0, got 10000");
  // A sliding window putting each row into too many windows.
  EXPECT_EQ(ErrorOf(R"(operators:
  - generator_source:
  - key_by: [user_id]
  - window:
      type: sliding
      size: 1h
      slide: 1ms
  - aggregate: [count(*)]
  - collect_sink:
)"),
            "job.yaml:7:14: operator 'window' (id 2): parameter 'slide_ms': size_ms 3600000 / "
            "slide_ms 1 puts each row into 3600000 windows; at most 1024 are allowed: use a "
            "slide of at least 3516 ms");
  // A name.
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n    name: a.b\n"),
            "job.yaml:3:11: operator 'a.b' (id 0): name has a character not allowed at position "
            "1 (allowed: letters, digits, '_', and '-' after the first)");
  // A structure rule about a whole operator: its kind key.
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - map: {columns: {a: '1'}}\n"),
            "job.yaml:3:5: operator 'map' (id 1): its output goes nowhere (feed it into another "
            "operator or a sink)");
  EXPECT_EQ(ErrorOf(R"(operators:
  - name: a
    generator_source:
  - name: b
    generator_source:
  - join: {left_keys: [k], right_keys: [j]}
    left: a
    right: b
    partitioning: {hash: [k]}
  - collect_sink:
)"),
            "job.yaml:9:19: edge 'b' -> 'join' (input 1): a join input is HASH on that side's "
            "join keys; the edge cannot ask for hash on other keys");
}

// Binding errors (what only the real schema can tell) name a position in the expression; the
// job file places it in the file.
TEST(JobFileTest, PlacesOfExpressionErrorsFoundWhenBinding) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(operators:
  - generator_source:
  - name: f
    filter: amount > 1
  - name: m
    map:
      columns:
        x: "a + b"
        xy: |
          1 +
            nope
        z: >
          a +
          b
  - name: g
    filter: {predicate: 'x > 0'}
  - collect_sink:
)"));
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'f' (filter): predicate: unknown column "
                                       "'amount' at 1:1; available columns: 'key'"),
            "job.yaml:4:13");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'm' (map): column 'x': type mismatch at 1:3 in "
                                       "'a + b'"),
            "job.yaml:8:15");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'm' (map): column 'xy': unknown column 'nope' "
                                       "at 2:3"),
            "job.yaml:11:13");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'm' (map): column 'z': bad at 1:8"),
            "job.yaml:13:11");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'g' (filter): predicate: bad at 1:5"),
            "job.yaml:16:30");
  // Errors without a position, of other operators, or of unknown labels are not placed.
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'f' (filter): predicate: not boolean"), "");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'q' (filter): predicate: bad at 1:1"), "");
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'm' (map): column 'w': bad at 1:1"), "");
  EXPECT_EQ(job.PlaceOfExpressionError("task 0 of 'x': no operator"), "");
  // A position past the first line of a plain scalar cannot be placed exactly.
  EXPECT_EQ(job.PlaceOfExpressionError("operator 'f' (filter): predicate: bad at 2:1"), "");
}

TEST(JobFileErrorTest, DuplicateNames) {
  EXPECT_EQ(ErrorOf(R"(operators:
  - name: x
    generator_source:
  - name: x
    collect_sink:
)"),
            "job.yaml:4:11: operator name 'x' is also the name of the operator at "
            "job.yaml:2:11");
}

TEST(JobFileErrorTest, MissingFile) {
  auto job = ReadJobFile("/nonexistent/job.yaml");
  ASSERT_FALSE(job.ok());
  EXPECT_TRUE(job.status().IsIOError());
  EXPECT_EQ(job.status().message(), "/nonexistent/job.yaml: cannot open the job file");
}

// ---------------------------------------------------------------------------------------------
// Durations and sizes.

TEST(JobFileTest, Durations) {
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("5s"), milliseconds(5000));
  EXPECT_EQ(*ParseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(*ParseDuration("1h"), milliseconds(3600000));
  EXPECT_EQ(*ParseDuration("1m30s"), milliseconds(90000));
  EXPECT_EQ(*ParseDuration("0s"), milliseconds(0));
  for (const char* bad : {"", "5", "s", "5x", "-5s", "5.5s", "99999999999999999999s",
                          "9223372036854775807h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  for (int64_t ms : {0, 1, 999, 1000, 61000, 90000, 3600000, 3661001}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(milliseconds(ms))), milliseconds(ms));
  }
  EXPECT_EQ(FormatDuration(milliseconds(90000)), "1m30s");
  EXPECT_EQ(*ParseByteSize("256MiB"), 256 << 20);
  EXPECT_EQ(*ParseByteSize("1GiB"), int64_t{1} << 30);
  EXPECT_EQ(*ParseByteSize("7B"), 7);
  for (const char* bad : {"", "256", "MiB", "1MB", "1.5GiB", "99999999999999GiB"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips: FormatJobFile, read back, gives the same plan.

void ExpectRoundTrip(const LogicalPlan& plan, const JobRunOptions& options = {}) {
  ASSERT_OK_AND_ASSIGN(std::string text, FormatJobFile("round-trip", plan, options));
  auto back = ParseJobFile(text, "round-trip.yaml", "/");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << text;
  EXPECT_TRUE(back->plan.Equals(plan)) << text;
  EXPECT_EQ(back->options, options) << text;
  EXPECT_EQ(back->name, "round-trip");
}

TEST(JobFileRoundTripTest, EveryKindAndRequest) {
  GeneratorSourceParams gen;
  gen.table = GeneratorTable::kTransactions;
  gen.rows = 12345;
  gen.batch_rows = 100;
  gen.key_cardinality = 7;
  gen.distribution = KeyDistributionKind::kSkewed;
  gen.hot_key_fraction = 0.3;
  gen.seed = 18446744073709551615ull;
  gen.rows_per_second = 1000.5;
  gen.event_time = EventTimeSpec{"event_time", milliseconds(1500)};
  FileSourceParams csv{FileFormat::kCsv, {"/data/a.csv", "/data/dir"}, {'\t', false}, {}};
  PlanBuilder b;
  Stream s = b.Source(gen, 4, "null");  // a name YAML would read as null unless quoted
  Stream right = b.Source(csv, 2, "csv");
  s = s.Map({{"a", "amount * 2"}, {"b", "'x\"y'"}}).Filter("a > 1 and b is not null");
  s = s.Rebalance().Project({{"user_id", "user_id"}, {"a", "a"}}, 3);
  Stream keyed = s.KeyBy({"user_id"});
  keyed.Window(Sliding(std::chrono::minutes(10), std::chrono::minutes(1)))
      .Aggregate({Sum("a", "total"), CountRows("n"), CountDistinct("a")}, 2)
      .Sink(FileSinkParams{FileFormat::kCsv, "/out/csv", {';', true}});
  s.Join(right, {"user_id"}, {"id"}, JoinType::kFull, 2, "j")
      .Sink(FileSinkParams{FileFormat::kIpc, "/out/ipc", {}});
  s.PartitionByRange({"a"}, {{2.5}, {7.0}}).Sink(ConsoleSinkParams{7}, 3, "console");
  s.Broadcast().Sink(CollectSinkParams{}, 2, "collect");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  JobRunOptions options;
  options.threads = 2;
  options.memory_budget_bytes = 3 << 20;
  options.spill_directory = "/spill";
  options.progress = false;
  options.state_budget_bytes = 48 << 10;
  ExpectRoundTrip(plan, options);
}

TEST(JobFileRoundTripTest, BroadcastJoins) {
  PlanBuilder b;
  Stream orders = b.Source(GeneratorSourceParams{}, 3, "orders");
  Stream users = b.Source(GeneratorSourceParams{}, 1, "users");
  orders.Join(users, JoinParams{{"key"}, {"key"}, JoinType::kAnti, JoinBroadcast::kRight}, 2, "j")
      .Sink(CollectSinkParams{}, 2, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ExpectRoundTrip(plan, JobRunOptions{});
}

TEST(JobFileRoundTripTest, LineageRecovery) {
  PlanOptions options;
  options.shuffle_mode = ShuffleMode::kBlocking;
  options.lineage_recovery = true;
  PlanBuilder b;
  b.SetOptions(options);
  b.Source(GeneratorSourceParams{}, 3, "gen").Sink(CollectSinkParams{}, 2, "out");
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ASSERT_TRUE(plan.options().lineage_recovery);
  ExpectRoundTrip(plan, JobRunOptions{});
}

TEST(JobFileRoundTripTest, WindowAndIntervalJoins) {
  for (JoinTime time : {JoinTime::kWindow, JoinTime::kInterval}) {
    JoinParams p{{"key"}, {"key"}};
    p.time = time;
    p.left_time = "t";
    p.right_time = "u";
    if (time == JoinTime::kWindow) p.window = std::chrono::minutes(5);
    if (time == JoinTime::kInterval) p.before = std::chrono::seconds(90);
    PlanBuilder b;
    Stream orders = b.Source(GeneratorSourceParams{}, 3, "orders");
    Stream users = b.Source(GeneratorSourceParams{}, 1, "users");
    orders.Join(users, p, 2, "j").Sink(CollectSinkParams{}, 2, "out");
    ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
    ExpectRoundTrip(plan, JobRunOptions{});
  }
}

TEST(JobFileTest, WindowAndIntervalJoinKeys) {
  const char* base = R"(operators:
  - name: a
    generator_source:
  - name: b
    generator_source:
  - join: {on: [key], %s}
    left: a
    right: b
  - collect_sink:
)";
  auto yaml = [&](const char* time) {
    char text[512];
    std::snprintf(text, sizeof(text), base, time);
    return std::string(text);
  };
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(yaml("window: 1m30s, time: event_time")));
  auto join = std::get<JoinParams>(job.plan.operators()[2].params);
  EXPECT_EQ(join.time, JoinTime::kWindow);
  EXPECT_EQ(join.window, std::chrono::seconds(90));
  EXPECT_EQ(join.left_time, "event_time");
  EXPECT_EQ(join.right_time, "event_time");
  ASSERT_OK_AND_ASSIGN(job, Parse(yaml("interval: {before: 2s, after: 1s}, left_time: a, "
                                       "right_time: b")));
  join = std::get<JoinParams>(job.plan.operators()[2].params);
  EXPECT_EQ(join.time, JoinTime::kInterval);
  EXPECT_EQ(join.before, std::chrono::seconds(2));
  EXPECT_EQ(join.after, std::chrono::seconds(1));
  EXPECT_EQ(join.right_time, "b");
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("window: 1m, interval: {after: 1s}, time: t")),
                        "a window join or an interval join, not both"));
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("interval: {after: 1s, during: 2s}, time: t")),
                        "during"));
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("window: 1m")), "needs the event-time column"));
}

TEST(JobFileTest, JoinBroadcastAndTypes) {
  const char* base = R"(operators:
  - name: a
    generator_source:
  - name: b
    generator_source:
  - join: {on: [key], how: %s, broadcast: %s}
    left: a
    right: b
  - collect_sink:
)";
  auto yaml = [&](const char* how, const char* side) {
    char text[512];
    std::snprintf(text, sizeof(text), base, how, side);
    return std::string(text);
  };
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(yaml("right_semi", "left")));
  const auto& join = std::get<JoinParams>(job.plan.operators()[2].params);
  EXPECT_EQ(join.how, JoinType::kRightSemi);
  EXPECT_EQ(join.broadcast, JoinBroadcast::kLeft);
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("inner", "both")), "job.yaml:6:46: "));
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("inner", "both")), "join broadcast side"));
  EXPECT_TRUE(HasSubstr(ErrorOf(yaml("full", "right")),
                        "a full join cannot broadcast its right side"));
}

TEST(JobFileRoundTripTest, SeedPipelineAndSessions) {
  PlanBuilder b;
  b.Source(FileSourceParams{FileFormat::kParquet, {"/d"}, {}, EventTimeSpec{"t", {}}}, 3)
      .KeyBy({"k"})
      .Window(Session(std::chrono::seconds(30)))
      .Aggregate({Mean("v"), Min("v"), Max("v"), Count("v")}, 3)
      .Sink(FileSinkParams{FileFormat::kParquet, "/o", {}});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ExpectRoundTrip(plan);
  PlanBuilder blocking;
  blocking.SetOptions(PlanOptions{ShuffleMode::kBlocking, false});
  blocking.Source(GeneratorSourceParams{}, 1).PartitionByHash({"key"}).Sink(ConsoleSinkParams{}, 2);
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan2, blocking.Build());
  ExpectRoundTrip(plan2);
}

TEST(JobFileTest, FirstLastAndApproxMedianAggregates) {
  ASSERT_OK_AND_ASSIGN(JobFile job, Parse(R"(
operators:
  - parquet_source: {paths: [/d]}
  - key_by: [k]
  - aggregate: [first(v), LAST(v) as latest, approx_median( v ), count(*)]
  - collect_sink:
)"));
  PlanBuilder b;
  b.Source(FileSourceParams{FileFormat::kParquet, {"/d"}, {}, {}})
      .KeyBy({"k"})
      .Aggregate({First("v"), Last("v", "latest"), ApproxMedian("v"), Count()})
      .Sink(CollectSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan expected, b.Build());
  EXPECT_TRUE(job.plan.Equals(expected));
  ExpectRoundTrip(expected);
  EXPECT_EQ(ErrorOf("operators:\n  - generator_source:\n  - aggregate: [first(*)]\n"),
            "job.yaml:3:17: operator 'aggregate': first needs a column: first(column)");
}

TEST(JobFileRoundTripTest, WindowTimeFieldsAndIdleTimeout) {
  PlanBuilder b;
  b.SetOptions(PlanOptions{ShuffleMode::kPipelined, true, std::chrono::seconds(2)});
  WindowParams window = Sliding(std::chrono::minutes(10), std::chrono::minutes(1));
  window.time_column = "t";
  window.allowed_lateness = std::chrono::seconds(90);
  window.late_output = LateOutputSpec{FileFormat::kCsv, "/late", {';', false}};
  Stream keyed = b.Source(FileSourceParams{FileFormat::kParquet, {"/d"}, {}, EventTimeSpec{"t", {}}}, 2)
                     .KeyBy({"k"});
  keyed.Window(window).Aggregate({Sum("v")}, 2).Sink(FileSinkParams{FileFormat::kParquet, "/o", {}});
  WindowParams processing = Tumbling(std::chrono::seconds(5));
  processing.time = TimeDomain::kProcessingTime;
  keyed.Window(processing).Aggregate({Count()}, 2).Sink(CollectSinkParams{});
  ASSERT_OK_AND_ASSIGN(LogicalPlan plan, b.Build());
  ExpectRoundTrip(plan);
}

// options: checkpoint: (docs/fault-tolerance.md): read, validated with the line of the field,
// written back.
TEST(JobFileTest, CheckpointOptionsFromYaml) {
  ASSERT_OK_AND_ASSIGN(JobFile job, ParseJobFile(R"(job: chk
options:
  checkpoint:
    interval: 1s
    directory: chk
    retained: 3
    max_restarts: 5
    restart_delay: 250ms
    restart_backoff: 1.5
    max_restart_delay: 10s
operators:
  - generator_source: {rows: 10}
  - collect_sink:
)", "job.yaml", "/base"));
  const CheckpointOptions& c = job.plan.options().checkpoint;
  EXPECT_EQ(c.interval, std::chrono::seconds(1));
  EXPECT_EQ(c.directory, "/base/chk");
  EXPECT_EQ(c.retained, 3);
  EXPECT_EQ(c.max_restarts, 5);
  EXPECT_EQ(c.restart_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(c.restart_backoff, 1.5);
  EXPECT_EQ(c.max_restart_delay, std::chrono::seconds(10));
  ExpectRoundTrip(job.plan);
  // A URI is kept as it is; defaults for the rest.
  ASSERT_OK_AND_ASSIGN(JobFile uri, ParseJobFile(R"(job: chk
options: {checkpoint: {interval: 100ms, directory: "s3://bucket/chk"}}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base"));
  EXPECT_EQ(uri.plan.options().checkpoint.directory, "s3://bucket/chk");
  EXPECT_EQ(uri.plan.options().checkpoint.retained, CheckpointOptions{}.retained);
  // Errors name the line, the column and the field.
  ASSERT_RAISES_WITH(Invalid, "job.yaml:3:15: options: checkpoint: directory is required",
                     ParseJobFile(R"(job: chk
options:
  checkpoint: {interval: 1s}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base").status());
  ASSERT_RAISES_WITH(Invalid, "job.yaml:3:40: options: checkpoint: retained must be between 1",
                     ParseJobFile(R"(job: chk
options:
  checkpoint: {directory: d, retained: 0}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base").status());
  ASSERT_RAISES_WITH(Invalid, "unknown key 'intervall' in checkpoint",
                     ParseJobFile(R"(job: chk
options:
  checkpoint: {intervall: 1s}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base").status());
  ASSERT_RAISES_WITH(Invalid, "restart_backoff must be between 1 and 1000",
                     ParseJobFile(R"(job: chk
options:
  checkpoint: {directory: d, restart_backoff: 0.5}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base").status());
  // Durations beyond the plan JSON's bound (they would not survive it) are refused.
  ASSERT_RAISES_WITH(Invalid, "checkpoint: max_restart_delay must be at most 2^40 ms",
                     ParseJobFile(R"(job: chk
options:
  checkpoint: {directory: d, interval: 1s, max_restart_delay: 999999999h}
operators: [{generator_source: {rows: 10}}, {collect_sink: }]
)", "job.yaml", "/base").status());
}

TEST(JobFileTest, WindowLateOutputAndTimeFromYaml) {
  ASSERT_OK_AND_ASSIGN(JobFile job, ParseJobFile(R"(job: late
options:
  idle_timeout: 750ms
operators:
  - parquet_source: {paths: [in.parquet], event_time: {column: t, max_out_of_orderness: 5s}}
  - key_by: user_id
  - window:
      size: 1m
      allowed_lateness: 30s
      late_output: {format: ipc, directory: late}
  - aggregate: [sum(amount)]
  - collect_sink:
)", "job.yaml", "/base"));
  EXPECT_EQ(job.plan.options().idle_timeout, std::chrono::milliseconds(750));
  const auto& window = std::get<WindowParams>(job.plan.operators()[2].params);
  EXPECT_EQ(window.allowed_lateness, std::chrono::seconds(30));
  ASSERT_TRUE(window.late_output.has_value());
  EXPECT_EQ(window.late_output->format, FileFormat::kIpc);
  EXPECT_EQ(window.late_output->directory, "/base/late");
  EXPECT_EQ(window.time, TimeDomain::kEventTime);
  // Errors point at the field.
  ASSERT_RAISES_WITH(Invalid, "job.yaml:4:37: operator 'window': late_output needs directory:",
                     ParseJobFile(R"(job: late
operators:
  - generator_source: {rows: 10, event_time: event_time}
  - window: {size: 1m, late_output: {format: parquet}}
  - aggregate: [count(*)]
  - collect_sink:
)", "job.yaml", "/base").status());
  ASSERT_RAISES_WITH(Invalid, "operator 'window' (id 1): parameter 'allowed_lateness_ms': is for event time",
                     ParseJobFile(R"(job: late
operators:
  - generator_source: {rows: 10, event_time: event_time}
  - window: {size: 1m, time: processing_time, allowed_lateness: 1s}
  - aggregate: [count(*)]
  - collect_sink:
)", "job.yaml", "/base").status());
}

// ---------------------------------------------------------------------------------------------
// The shipped examples parse and expand.

TEST(JobFileExamplesTest, EveryExampleParsesAndExpands) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SABOT_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    SCOPED_TRACE(entry.path().string());
    ASSERT_OK_AND_ASSIGN(JobFile job, ReadJobFile(entry.path().string()));
    ASSERT_OK_AND_ASSIGN(ExecutionGraph graph, ExecutionGraph::Make(job.plan));
    EXPECT_FALSE(Explain(graph).empty());
    EXPECT_EQ(job.display_name, entry.path().string());
  }
  EXPECT_GE(count, 4);
}

}  // namespace
}  // namespace sabot
