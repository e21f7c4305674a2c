// sabot._sabot: the extension module of the Python package. Bindings only: plans are built with
// the C++ PlanBuilder, bound and run by the C++ local executor, shuffles go through the C++
// ShuffleService of an Engine. Arrow data crosses the boundary zero-copy through the Arrow C
// data and stream interfaces, as PyCapsules (the __arrow_c_stream__ / __arrow_c_array__ /
// __arrow_c_schema__ protocols), never through libarrow_python. Every arrow::Status error is
// raised as the sabot.errors exception of its code (python/sabot/errors.py).
//
// The GIL: held while Python calls in; released while a job runs (the calling thread waits,
// taking the GIL back only to check for signals every 100 ms) and while a shuffle call may wait;
// taken by a task thread only around a call into a Python function of a function_map.
//
// Distributed mode: a Cluster is a CoordinatorClient (submit a plan, follow the job, cancel it);
// a PythonAgent is the C++ Agent and its AgentRegistration, whose function provider asks Python
// for the functions of each job's function_map operators (python -m sabot agent).

#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <arrow/api.h>
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>

#include "sabot/common/arrow_init.h"
#include "sabot/dataflow/execution_graph.h"
#include "sabot/dataflow/explain.h"
#include "sabot/dataflow/function_map.h"
#include "sabot/dataflow/job_binding.h"
#include "sabot/dataflow/job_report_format.h"
#include "sabot/dataflow/local_executor.h"
#include "sabot/dataflow/plan_builder.h"
#include "sabot/dataflow/plan_json.h"
#include "sabot/runtime/agent.h"
#include "sabot/runtime/agent_registration.h"
#include "sabot/runtime/cluster_actions.h"
#include "sabot/runtime/cluster_config.h"
#include "sabot/runtime/cluster_state.h"
#include "sabot/runtime/coordinator_client.h"
#include "sabot/runtime/engine.h"
#include "substrait_text.h"

namespace nb = nanobind;

namespace sabot::python {
namespace {

// A failed arrow::Status on its way to Python (the translator registered below raises it).
struct StatusError : std::exception {
  explicit StatusError(arrow::Status s) : status(std::move(s)), text(status.ToString()) {}
  const char* what() const noexcept override { return text.c_str(); }
  arrow::Status status;
  std::string text;
};

void Check(const arrow::Status& status) {
  if (!status.ok()) throw StatusError(status);
}
template <typename T>
T Unwrap(arrow::Result<T> result) {
  if (!result.ok()) throw StatusError(result.status());
  return result.MoveValueUnsafe();
}

// --- Arrow C data / stream interface -----------------------------------------------------------

template <typename T>
void ReleaseCapsule(PyObject* capsule, const char* name) {
  auto* c = static_cast<T*>(PyCapsule_GetPointer(capsule, name));
  if (c == nullptr) {
    PyErr_Clear();
    return;
  }
  if (c->release != nullptr) c->release(c);
  std::free(c);
}
void ReleaseStreamCapsule(PyObject* capsule) {
  ReleaseCapsule<ArrowArrayStream>(capsule, "arrow_array_stream");
}
void ReleaseArrayCapsule(PyObject* capsule) {
  ReleaseCapsule<ArrowArray>(capsule, "arrow_array");
}
void ReleaseSchemaCapsule(PyObject* capsule) {
  ReleaseCapsule<ArrowSchema>(capsule, "arrow_schema");
}

template <typename T>
nb::object NewCapsule(T** out, const char* name, PyCapsule_Destructor destructor) {
  *out = static_cast<T*>(std::malloc(sizeof(T)));
  if (*out == nullptr) throw std::bad_alloc();
  (*out)->release = nullptr;
  PyObject* capsule = PyCapsule_New(*out, name, destructor);
  if (capsule == nullptr) {
    std::free(*out);
    throw nb::python_error();
  }
  return nb::steal(capsule);
}

template <typename T>
T* CapsulePointer(nb::handle capsule, const char* name) {
  auto* p = static_cast<T*>(PyCapsule_GetPointer(capsule.ptr(), name));
  if (p == nullptr) throw nb::python_error();
  return p;
}

// Every batch of `obj` (any object with __arrow_c_stream__) as one table; the buffers are
// shared, not copied.
std::shared_ptr<arrow::Table> ImportTable(nb::handle obj) {
  if (!nb::hasattr(obj, "__arrow_c_stream__")) {
    throw nb::type_error("expected an object with __arrow_c_stream__ (a pyarrow Table)");
  }
  nb::object capsule = obj.attr("__arrow_c_stream__")();
  auto* stream = CapsulePointer<ArrowArrayStream>(capsule, "arrow_array_stream");
  auto reader = Unwrap(arrow::ImportRecordBatchReader(stream));
  return Unwrap(reader->ToTable());
}

std::shared_ptr<arrow::RecordBatch> ImportBatch(nb::handle obj) {
  if (!nb::hasattr(obj, "__arrow_c_array__")) {
    throw nb::type_error("expected an object with __arrow_c_array__ (a pyarrow RecordBatch)");
  }
  nb::tuple capsules = nb::cast<nb::tuple>(obj.attr("__arrow_c_array__")());
  auto* schema = CapsulePointer<ArrowSchema>(capsules[0], "arrow_schema");
  auto* array = CapsulePointer<ArrowArray>(capsules[1], "arrow_array");
  return Unwrap(arrow::ImportRecordBatch(array, schema));
}

std::shared_ptr<arrow::Schema> ImportSchema(nb::handle obj) {
  if (!nb::hasattr(obj, "__arrow_c_schema__")) {
    throw nb::type_error("expected an object with __arrow_c_schema__ (a pyarrow Schema)");
  }
  nb::object capsule = obj.attr("__arrow_c_schema__")();
  return Unwrap(arrow::ImportSchema(CapsulePointer<ArrowSchema>(capsule, "arrow_schema")));
}

// C++ Arrow objects handed to Python: pyarrow reads them through their protocol methods
// (pa.table(t), pa.record_batch(b), pa.schema(s)) without copying.
struct TableHandle {
  std::shared_ptr<arrow::Table> table;
  nb::object ArrowCStream(nb::handle /*requested_schema*/) const {
    ArrowArrayStream* stream;
    nb::object capsule = NewCapsule(&stream, "arrow_array_stream", ReleaseStreamCapsule);
    auto reader = std::make_shared<arrow::TableBatchReader>(table);
    Check(arrow::ExportRecordBatchReader(reader, stream));
    return capsule;
  }
};
struct BatchHandle {
  std::shared_ptr<arrow::RecordBatch> batch;
  nb::tuple ArrowCArray(nb::handle /*requested_schema*/) const {
    ArrowSchema* schema;
    ArrowArray* array;
    nb::object schema_capsule = NewCapsule(&schema, "arrow_schema", ReleaseSchemaCapsule);
    nb::object array_capsule = NewCapsule(&array, "arrow_array", ReleaseArrayCapsule);
    Check(arrow::ExportRecordBatch(*batch, array, schema));
    return nb::make_tuple(schema_capsule, array_capsule);
  }
};
struct SchemaHandle {
  std::shared_ptr<arrow::Schema> schema;
  nb::object ArrowCSchema() const {
    ArrowSchema* out;
    nb::object capsule = NewCapsule(&out, "arrow_schema", ReleaseSchemaCapsule);
    Check(arrow::ExportSchema(*schema, out));
    return capsule;
  }
};

// --- Python objects held by C++ threads -------------------------------------------------------

// A Python object owned from C++ code that may copy or drop it without the GIL (task threads):
// the shared_ptr's count is thread-safe; the last owner takes the GIL to release the object.
using PyRef = std::shared_ptr<nb::object>;
PyRef Hold(nb::object obj) {
  return PyRef(new nb::object(std::move(obj)), [](nb::object* o) {
    if (!Py_IsInitialized()) {
      // The interpreter is gone: the reference dies with it.
      (void)o->release();
      delete o;
      return;
    }
    nb::gil_scoped_acquire gil;
    delete o;
  });
}

// The Python exception being handled, as a Status whose message has the exception and its
// traceback (nanobind formats both).
arrow::Status PythonErrorStatus(nb::python_error& error) {
  return arrow::Status::ExecutionError("Python exception: ", error.what());
}

// A Python function of a function_map, called with the GIL held only inside the call.
// `call(BatchHandle) -> object with __arrow_c_array__`; `output_schema(SchemaHandle) -> object
// with __arrow_c_schema__`.
ProvidedFunction MakeProvided(nb::object call, nb::object output_schema) {
  ProvidedFunction f;
  PyRef py_call = Hold(std::move(call));
  PyRef py_schema = Hold(std::move(output_schema));
  f.call = [py_call](const std::shared_ptr<arrow::RecordBatch>& batch)
      -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    nb::gil_scoped_acquire gil;
    try {
      nb::object result = (*py_call)(BatchHandle{batch});
      return ImportBatch(result);
    } catch (nb::python_error& e) {
      return PythonErrorStatus(e);
    } catch (const StatusError& e) {
      return e.status;
    } catch (const std::exception& e) {
      return arrow::Status::ExecutionError(e.what());
    }
  };
  f.output_schema = [py_schema](const std::shared_ptr<arrow::Schema>& input)
      -> arrow::Result<std::shared_ptr<arrow::Schema>> {
    nb::gil_scoped_acquire gil;
    try {
      nb::object result = (*py_schema)(SchemaHandle{input});
      return ImportSchema(result);
    } catch (nb::python_error& e) {
      return PythonErrorStatus(e);
    } catch (const StatusError& e) {
      return e.status;
    } catch (const std::exception& e) {
      return arrow::Status::ExecutionError(e.what());
    }
  };
  return f;
}

// --- Plans ------------------------------------------------------------------------------------

std::optional<EventTimeSpec> EventTime(const std::optional<std::string>& column,
                                       int64_t max_out_of_orderness_ms) {
  if (!column) return std::nullopt;
  return EventTimeSpec{*column, std::chrono::milliseconds(max_out_of_orderness_ms)};
}

FileFormat Format(const std::string& name) { return Unwrap(ParseFileFormat(name)); }

// A PlanBuilder and the streams made on it, by index (the Python layer keeps indexes).
class PlanHandle {
 public:
  PlanHandle() : builder_(std::make_unique<PlanBuilder>()) {}

  int32_t GeneratorSource(const std::string& table, int64_t rows, int64_t key_cardinality,
                          int64_t batch_rows, uint64_t seed, double rows_per_second,
                          std::optional<std::string> event_time, int64_t lateness_ms,
                          int32_t parallelism, const std::string& name) {
    GeneratorSourceParams p;
    p.table = Unwrap(ParseGeneratorTable(table));
    p.rows = rows;
    p.key_cardinality = key_cardinality;
    p.batch_rows = batch_rows;
    p.seed = seed;
    p.rows_per_second = rows_per_second;
    p.event_time = EventTime(event_time, lateness_ms);
    return Add(builder_->Source(p, parallelism, name));
  }
  int32_t FileSource(const std::string& format, std::vector<std::string> paths,
                     std::optional<std::string> event_time, int64_t lateness_ms,
                     int32_t parallelism, const std::string& name) {
    FileSourceParams p;
    p.format = Format(format);
    p.paths = std::move(paths);
    p.event_time = EventTime(event_time, lateness_ms);
    return Add(builder_->Source(p, parallelism, name));
  }
  int32_t TableSource(const std::string& table, int64_t batch_rows,
                      std::optional<std::string> event_time, int64_t lateness_ms,
                      int32_t parallelism, const std::string& name) {
    TableSourceParams p;
    p.table = table;
    p.batch_rows = batch_rows;
    p.event_time = EventTime(event_time, lateness_ms);
    return Add(builder_->Source(p, parallelism, name));
  }
  int32_t Map(int32_t s, std::vector<std::pair<std::string, std::string>> columns,
              std::optional<int32_t> parallelism, const std::string& name) {
    std::vector<NamedExpression> named;
    for (auto& [column, expression] : columns) named.push_back({column, expression});
    return Add(At(s).Map(std::move(named), parallelism, name));
  }
  int32_t FunctionMap(int32_t s, const std::string& function, std::optional<int32_t> parallelism,
                      const std::string& name) {
    return Add(At(s).FunctionMap(function, parallelism, name));
  }
  int32_t Filter(int32_t s, const std::string& predicate, std::optional<int32_t> parallelism,
                 const std::string& name) {
    return Add(At(s).Filter(predicate, parallelism, name));
  }
  int32_t KeyBy(int32_t s, std::vector<std::string> keys, const std::string& name) {
    return Add(At(s).KeyBy(std::move(keys), name));
  }
  int32_t Window(int32_t s, const std::string& type, int64_t size_ms, int64_t slide_ms,
                 int64_t gap_ms, int64_t allowed_lateness_ms, const std::string& time_column,
                 std::optional<int32_t> parallelism, const std::string& name) {
    WindowParams p;
    p.type = Unwrap(ParseWindowType(type));
    p.size = std::chrono::milliseconds(size_ms);
    p.slide = std::chrono::milliseconds(slide_ms);
    p.gap = std::chrono::milliseconds(gap_ms);
    p.allowed_lateness = std::chrono::milliseconds(allowed_lateness_ms);
    p.time_column = time_column;
    return Add(At(s).Window(p, parallelism, name));
  }
  int32_t Aggregate(int32_t s,
                    std::vector<std::tuple<std::string, std::string, std::string>> aggregates,
                    std::optional<int32_t> parallelism, const std::string& name) {
    std::vector<AggregateSpec> specs;
    for (auto& [function, column, alias] : aggregates) {
      specs.push_back({Unwrap(ParseAggregateFunction(function)), column, alias});
    }
    return Add(At(s).Aggregate(std::move(specs), parallelism, name));
  }
  int32_t Join(int32_t left, int32_t right, std::vector<std::string> left_keys,
               std::vector<std::string> right_keys, const std::string& how,
               std::optional<int32_t> parallelism, const std::string& name) {
    return Add(At(left).Join(At(right), std::move(left_keys), std::move(right_keys),
                             Unwrap(ParseJoinType(how)), parallelism, name));
  }
  int32_t CollectSink(int32_t s, const std::string& name) {
    return Add(At(s).Sink(CollectSinkParams{}, std::nullopt, name));
  }
  int32_t FileSink(int32_t s, const std::string& format, const std::string& directory,
                   std::optional<int32_t> parallelism, const std::string& name) {
    FileSinkParams p;
    p.format = Format(format);
    p.directory = directory;
    return Add(At(s).Sink(p, parallelism, name));
  }
  void SetShuffleMode(const std::string& mode) {
    PlanOptions options;
    options.shuffle_mode = Unwrap(ParseShuffleMode(mode));
    builder_->SetOptions(options);
  }
  LogicalPlan Build() const { return Unwrap(builder_->Build()); }

 private:
  int32_t Add(Stream s) {
    streams_.push_back(s);
    return static_cast<int32_t>(streams_.size() - 1);
  }
  Stream& At(int32_t s) {
    if (s < 0 || s >= static_cast<int32_t>(streams_.size())) {
      throw nb::index_error("no such stream in this plan");
    }
    return streams_[s];
  }
  std::unique_ptr<PlanBuilder> builder_;
  std::vector<Stream> streams_;
};

std::string Explain(const LogicalPlan& plan) {
  return sabot::Explain(Unwrap(ExecutionGraph::Make(plan)));
}

// What a job needs from Python: its tables and its functions.
struct JobInputs {
  std::shared_ptr<ProvidedTables> tables = std::make_shared<ProvidedTables>();
  std::shared_ptr<ProvidedFunctions> functions = std::make_shared<ProvidedFunctions>();
};

JobInputs Inputs(const nb::dict& tables, const nb::dict& functions) {
  JobInputs inputs;
  for (auto [name, table] : tables) {
    Check(inputs.tables->Add(nb::cast<std::string>(name), ImportTable(table)));
  }
  for (auto [name, pair] : functions) {
    nb::tuple t = nb::cast<nb::tuple>(pair);
    Check(inputs.functions->Add(nb::cast<std::string>(name),
                                MakeProvided(nb::borrow(t[0]), nb::borrow(t[1]))));
  }
  return inputs;
}

BindOptions BindWith(const JobInputs& inputs, const std::string& job_id,
                     std::shared_ptr<CollectedOutput> collected) {
  BindOptions bind;
  bind.job_id = job_id;
  bind.tables = inputs.tables;
  bind.functions = inputs.functions;
  bind.collected = std::move(collected);
  return bind;
}

// The output schema of every operator of `plan` (binding only: nothing runs), by name.
std::map<std::string, SchemaHandle> OutputSchemas(const LogicalPlan& plan, const nb::dict& tables,
                                                  const nb::dict& functions) {
  JobInputs inputs = Inputs(tables, functions);
  auto bound = Unwrap(
      BindJob(plan, BindWith(inputs, "schemas", std::make_shared<CollectedOutput>())));
  std::map<std::string, SchemaHandle> out;
  for (const OperatorSpec& op : plan.operators()) {
    auto it = bound->output_schemas.find(op.id);
    if (it != bound->output_schemas.end()) out[op.name] = SchemaHandle{it->second};
  }
  return out;
}

struct RunResult {
  std::map<std::string, TableHandle> collected;
  std::string summary;
  int64_t wall_ns = 0;
};

// Binds and runs `plan` on the local executor. The calling thread waits without the GIL and
// checks for signals (Ctrl-C) every 100 ms: a signal handler that raises cancels the job, waits
// for it to end, and the exception propagates.
RunResult RunLocal(const LogicalPlan& plan, const nb::dict& tables, const nb::dict& functions,
                   const std::string& job_id, int32_t threads, int64_t memory_budget,
                   int64_t state_budget_per_task, const std::string& spill_directory) {
  JobInputs inputs = Inputs(tables, functions);
  LocalExecutorOptions options;
  options.job_id = job_id;
  options.threads = threads;
  options.memory_budget = memory_budget;
  options.state_budget_per_task = state_budget_per_task;
  options.spill_directory = spill_directory;
  options.collected = std::make_shared<CollectedOutput>();
  options.tables = inputs.tables;
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  options.cancel = cancel.get();
  BindOptions bind = BindOptionsOf(options);
  bind.functions = inputs.functions;
  auto bound = Unwrap(BindJob(plan, bind, options.shuffle));

  auto job = std::async(std::launch::async, [bound, options, cancel]() {
    return RunBoundJob(bound, options);
  });
  bool interrupted = false;
  {
    nb::gil_scoped_release release;
    while (job.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (interrupted) continue;
      nb::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        // The exception stays set on this thread until the job ended.
        interrupted = true;
        cancel->store(true);
      }
    }
  }
  arrow::Result<JobReport> report = job.get();
  if (interrupted) throw nb::python_error();
  JobReport r = Unwrap(std::move(report));
  RunResult result;
  for (const std::string& sink : options.collected->sinks()) {
    result.collected[sink] = TableHandle{Unwrap(options.collected->Table(sink))};
  }
  result.summary = FormatJobSummary(r);
  result.wall_ns = r.wall.count();
  return result;
}

// --- The shuffle service of an engine ---------------------------------------------------------

// A buffer that keeps `owner` alive as long as it lives: batches a shuffle delivers may hold
// memory of the engine's budget pool, and Python may keep them after the engine is shut down.
class OwnedBuffer : public arrow::Buffer {
 public:
  OwnedBuffer(const std::shared_ptr<arrow::Buffer>& parent, std::shared_ptr<void> owner)
      : arrow::Buffer(parent, 0, parent->size()), owner_(std::move(owner)) {}
  // The parent's memory goes back to its pool before the owner (and so the pool) may go.
  ~OwnedBuffer() override { parent_.reset(); }

 private:
  std::shared_ptr<void> owner_;
};

std::shared_ptr<arrow::ArrayData> WithOwner(const std::shared_ptr<arrow::ArrayData>& data,
                                            const std::shared_ptr<void>& owner) {
  auto out = data->Copy();
  for (auto& buffer : out->buffers) {
    if (buffer != nullptr) buffer = std::make_shared<OwnedBuffer>(buffer, owner);
  }
  for (auto& child : out->child_data) child = WithOwner(child, owner);
  if (out->dictionary != nullptr) out->dictionary = WithOwner(out->dictionary, owner);
  return out;
}

std::shared_ptr<arrow::RecordBatch> WithOwner(const std::shared_ptr<arrow::RecordBatch>& batch,
                                              const std::shared_ptr<void>& owner) {
  std::vector<std::shared_ptr<arrow::ArrayData>> columns;
  for (const auto& column : batch->column_data()) columns.push_back(WithOwner(column, owner));
  return arrow::RecordBatch::Make(batch->schema(), batch->num_rows(), std::move(columns));
}

class EngineHandle {
 public:
  explicit EngineHandle(const std::string& mode, int64_t memory_budget) {
    EngineOptions options;
    options.mode = Unwrap(ParseEngineMode(mode));
    if (memory_budget > 0) options.manager.memory_budget = memory_budget;
    engine_ = std::shared_ptr<Engine>(Unwrap(Engine::Make(std::move(options))));
  }
  std::string mode() const { return std::string(EngineModeName(engine_->mode())); }
  std::string location() const { return engine_->location(); }

  void CreateShuffle(const std::string& id, const std::string& type, int32_t num_partitions,
                     std::vector<std::string> keys, nb::handle schema,
                     const std::string& shuffle_mode) {
    ShuffleOptions options;
    options.mode = Unwrap(ParseShuffleMode(shuffle_mode));
    Check(service()->CreateShuffle(id, Unwrap(ParseEdgeType(type)), num_partitions,
                                   std::move(keys), ImportSchema(schema), {}, options));
  }
  void SendPartition(const std::string& id, int32_t partition, nb::handle batch,
                     const std::string& agent) {
    auto b = ImportBatch(batch);
    nb::gil_scoped_release release;
    Check(service()->SendPartition(id, partition, b, agent));
  }
  void Send(const std::string& id, nb::handle batch) {
    auto b = ImportBatch(batch);
    nb::gil_scoped_release release;
    Check(service()->Send(id, b));
  }
  void FinishSending(const std::string& id) {
    nb::gil_scoped_release release;
    Check(service()->FinishSending(id));
  }
  std::vector<BatchHandle> ReceivePartition(const std::string& id, int32_t partition) {
    arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> batches;
    {
      nb::gil_scoped_release release;
      batches = service()->ReceivePartition(id, partition);
    }
    std::vector<BatchHandle> out;
    for (auto& b : Unwrap(std::move(batches))) out.push_back(BatchHandle{WithOwner(b, engine_)});
    return out;
  }
  void CloseShuffle(const std::string& id) { Check(service()->CloseShuffle(id)); }
  nb::dict Stats(const std::string& id) {
    return StatsDict(Unwrap(service()->GetShuffleStats(id)));
  }
  std::vector<nb::dict> AllStats() {
    std::vector<nb::dict> out;
    for (const ShuffleStats& s : service()->GetAllStats()) out.push_back(StatsDict(s));
    return out;
  }
  // Releases every shuffle (later calls fail). The engine itself (its pool) goes when the last
  // batch it delivered is gone (WithOwner): Engine::Shutdown would free their memory under them.
  void Shutdown() {
    nb::gil_scoped_release release;
    Check(service()->Shutdown());
  }

 private:
  ShuffleService* service() { return engine_->shuffle_service(); }
  static nb::dict StatsDict(const ShuffleStats& s) {
    nb::dict d;
    d["shuffle_id"] = s.shuffle_id;
    d["state"] = std::string(ShuffleLifecycleName(s.state));
    d["writers_finished"] = s.writers_finished;
    d["rows_written"] = s.rows_written;
    d["blocks_written"] = s.blocks_written;
    d["bytes_written"] = s.bytes_written;
    d["partition_rows"] = s.partition_rows;
    d["partition_bytes"] = s.partition_bytes;
    d["bytes_spilled"] = s.bytes_spilled;
    d["blocks_spilled"] = s.blocks_spilled;
    d["time_blocked_s"] = std::chrono::duration<double>(s.time_blocked).count();
    return d;
  }
  // Shared with the batches it delivered (WithOwner).
  std::shared_ptr<Engine> engine_;
};

// --- Distributed mode ----------------------------------------------------------------------

// The cluster's security from files (PEM paths, a token file) and a token given as text (it wins
// over the file's). Errors name the file.
ClusterSecurity Security(const std::string& token, const std::string& token_file,
                         const std::string& tls_ca, const std::string& tls_cert,
                         const std::string& tls_key, bool verify_clients) {
  ClusterSecurityFiles files;
  files.token_file = token_file;
  files.tls_ca = tls_ca;
  files.tls_cert = tls_cert;
  files.tls_key = tls_key;
  files.verify_clients = verify_clients;
  ClusterSecurity security = Unwrap(LoadClusterSecurity(files));
  if (!token.empty()) security.token = token;
  return security;
}

// A job's end as Python sees it.
struct JobOutcome {
  std::string job_id;
  std::string state;
  std::string summary;
  int64_t wall_ns = 0;
};

// The coordinator at `uri` (CoordinatorClient): submits plans and follows their jobs.
class ClusterHandle {
 public:
  ClusterHandle(const std::string& uri, const std::string& token, const std::string& token_file,
                const std::string& tls_ca, const std::string& tls_cert,
                const std::string& tls_key) {
    ShuffleClientOptions options;
    Security(token, token_file, tls_ca, tls_cert, tls_key, false).ApplyTo(&options);
    client_ = std::shared_ptr<CoordinatorClient>(
        Unwrap(CoordinatorClient::Make(uri, std::move(options))));
  }

  // Submits `plan` as job `name` and waits for its end without the GIL, polling the coordinator
  // every 100 ms and checking for signals between polls: a signal handler that raises (Ctrl-C)
  // cancels the job, waits for it to end, and the exception propagates. A job that failed or
  // was cancelled raises its error (naming job, operator, task and agent).
  JobOutcome Run(const LogicalPlan& plan, const std::string& name, int64_t memory_budget,
                 int64_t state_budget) {
    JobSubmission submission;
    submission.name = name;
    submission.plan_json = Unwrap(PlanToJson(plan));
    submission.memory_budget_bytes = memory_budget;
    submission.state_budget_bytes = state_budget;
    std::shared_ptr<CoordinatorClient> client = client_;
    arrow::Result<std::string> submitted;
    {
      nb::gil_scoped_release release;
      submitted = client->Submit(submission);
    }
    if (!submitted.ok()) {
      throw StatusError(submitted.status().WithMessage(CoordinatorErrorText(submitted.status())));
    }
    const std::string job_id = *submitted;
    bool interrupted = false;
    int failures = 0;
    JobInfo info;
    arrow::Status lost;
    {
      nb::gil_scoped_release release;
      while (true) {
        arrow::Result<JobInfo> polled = client->GetJob(job_id);
        if (!polled.ok()) {
          // A coordinator restarting or a network hiccup: a few attempts before giving up.
          if (++failures >= 20) {
            lost = polled.status().WithMessage("lost track of job ", job_id, ": ",
                                               CoordinatorErrorText(polled.status()));
            break;
          }
        } else {
          failures = 0;
          info = std::move(*polled);
          if (IsFinal(info.state)) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (interrupted) continue;
        nb::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
          // The exception stays set on this thread until the job ended.
          interrupted = true;
          nb::gil_scoped_release again;
          (void)client->Cancel(job_id);
        }
      }
    }
    if (interrupted) throw nb::python_error();
    Check(lost);
    if (info.state == JobState::kCancelled) {
      throw StatusError(arrow::Status::Cancelled("job ", job_id, " (", info.name,
                                                 ") was cancelled: ", info.error));
    }
    if (info.state != JobState::kFinished) {
      throw StatusError(arrow::Status::ExecutionError(info.error));
    }
    JobOutcome outcome;
    outcome.job_id = job_id;
    outcome.state = std::string(JobStateName(info.state));
    outcome.summary = FormatJobSummary(ReportOf(info));
    outcome.wall_ns = info.elapsed.count();
    return outcome;
  }

  // `list()` (a coordinator call) run without the GIL; its error raised as the coordinator's text.
  template <typename List>
  auto Listed(List list) -> typename decltype(list())::ValueType {
    decltype(list()) listed = arrow::Status::UnknownError("not called");
    {
      nb::gil_scoped_release release;
      listed = list();
    }
    if (!listed.ok()) {
      throw StatusError(listed.status().WithMessage(CoordinatorErrorText(listed.status())));
    }
    return std::move(*listed);
  }

  // Every job of the coordinator, newest first: id, name, state, error.
  std::vector<nb::dict> Jobs() {
    std::vector<nb::dict> out;
    for (const JobInfo& j : Listed([&] { return client_->ListJobs(); })) {
      nb::dict d;
      d["id"] = j.id;
      d["name"] = j.name;
      d["state"] = std::string(JobStateName(j.state));
      d["error"] = j.error;
      out.push_back(std::move(d));
    }
    return out;
  }

  std::vector<nb::dict> Agents() {
    std::vector<nb::dict> out;
    for (const AgentInfo& a : Listed([&] { return client_->ListAgents(); })) {
      nb::dict d;
      d["id"] = a.id;
      d["lost"] = a.lost;
      d["location"] = a.location;
      d["slots"] = a.slots;
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  std::shared_ptr<CoordinatorClient> client_;
};

// An agent of a cluster running inside this Python process: the C++ Agent (its server, shuffle
// manager and task threads) registered with the coordinator by an AgentRegistration, whose
// function provider resolves each job's function_map names through `resolve(name) -> (call,
// output_schema)` (Python, with the GIL, on a Flight thread when the job is deployed).
class PythonAgentHandle {
 public:
  PythonAgentHandle(const std::string& coordinator, int32_t slots, const std::string& name,
                    const std::string& host, int32_t port, int64_t memory_budget,
                    const std::string& spill_dir, const std::string& token,
                    const std::string& token_file, const std::string& tls_ca,
                    const std::string& tls_cert, const std::string& tls_key,
                    bool verify_clients, nb::object resolve) {
    if (slots < 1) throw StatusError(arrow::Status::Invalid("slots must be >= 1, got ", slots));
    ClusterSecurity security =
        Security(token, token_file, tls_ca, tls_cert, tls_key, verify_clients);
    EngineOptions engine;
    engine.mode = EngineMode::kDistributed;
    engine.server.host = host;
    engine.server.port = port;
    engine.manager.agent_id = name;
    if (memory_budget > 0) engine.manager.memory_budget = memory_budget;
    engine.manager.spill.directory = spill_dir;
    security.ApplyTo(&engine.server);
    security.ApplyTo(&engine.client);
    agent_ = Unwrap(Agent::Make(engine));
    PyRef resolver = Hold(std::move(resolve));
    agent_->SetFunctionProvider(
        [resolver](const LogicalPlan& plan) -> arrow::Result<std::shared_ptr<ProvidedFunctions>> {
          auto functions = std::make_shared<ProvidedFunctions>();
          for (const OperatorSpec& op : plan.operators()) {
            const auto* params = std::get_if<FunctionMapParams>(&op.params);
            if (params == nullptr) continue;
            nb::object call, output_schema;
            {
              nb::gil_scoped_acquire gil;
              try {
                nb::tuple pair = nb::cast<nb::tuple>((*resolver)(params->function));
                call = nb::borrow<nb::object>(pair[0]);
                output_schema = nb::borrow<nb::object>(pair[1]);
              } catch (nb::python_error& e) {
                return arrow::Status::Invalid("operator '", op.name, "' (function_map): ",
                                              "function '", params->function,
                                              "' cannot be loaded on this agent: ", e.what());
              }
            }
            ARROW_RETURN_NOT_OK(functions->Add(
                params->function, MakeProvided(std::move(call), std::move(output_schema))));
          }
          return functions;
        });
    AgentRegistrationOptions membership;
    membership.coordinator = coordinator;
    security.ApplyTo(&membership.client);
    membership.location = agent_->location();
    membership.slots = slots;
    membership.name = name;
    Agent* serving = agent_.get();
    membership.memory = [serving] {
      BudgetedMemoryPool* pool = serving->engine()->shuffle_manager()->pool();
      return std::pair<int64_t, int64_t>{pool->budget(), pool->bytes_allocated()};
    };
    registration_ = Unwrap(AgentRegistration::Start(std::move(membership)));
  }
  ~PythonAgentHandle() { Close(); }

  std::string location() const { return agent_ ? agent_->location() : ""; }
  std::string agent_id() const { return registration_ ? registration_->agent_id() : ""; }
  bool WaitRegistered(double timeout_s) {
    nb::gil_scoped_release release;
    return registration_->WaitRegistered(
        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  }
  // Serves until the agent is shut down (the shutdown action, or Close from another thread);
  // without the GIL, checking for signals every 100 ms: a signal handler that raises
  // (Ctrl-C, SIGTERM made to raise) stops the agent (its tasks cancelled) and propagates.
  void Serve() {
    std::atomic<bool> done{false};
    Agent* agent = agent_.get();
    std::thread waiter([agent, &done] {
      agent->WaitForShutdown();
      done.store(true);
    });
    bool interrupted = false;
    {
      nb::gil_scoped_release release;
      while (!done.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (interrupted) continue;
        nb::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
          interrupted = true;
          nb::gil_scoped_release again;
          agent->Stop(arrow::Status::Cancelled("agent '", agent_id(), "' was interrupted"));
        }
      }
      waiter.join();
    }
    if (interrupted) throw nb::python_error();
  }
  // Leaves the cluster: stops heartbeating, cancels what still runs, stops serving. The GIL is
  // released meanwhile (task threads may need it to end their Python calls).
  void Close() {
    if (!agent_) return;
    nb::gil_scoped_release release;
    registration_.reset();
    agent_->Shutdown();
    agent_.reset();
  }

 private:
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<AgentRegistration> registration_;
};

}  // namespace
}  // namespace sabot::python

NB_MODULE(_sabot, m) {
  using namespace sabot;
  using namespace sabot::python;
  m.doc() = "The C++ core of Sabot (bindings only; use the sabot package).";
  if (arrow::Status st = InitializeArrow(); !st.ok()) throw std::runtime_error(st.ToString());

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const StatusError& e) {
      const arrow::Status& s = e.status;
      std::string detail = s.detail() ? s.detail()->ToString() : "";
      nb::object error = nb::module_::import_("sabot.errors")
                             .attr("_from_status")(static_cast<int>(s.code()), s.message(),
                                                   detail);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    }
  });

  nb::class_<TableHandle>(m, "_Table")
      .def("__arrow_c_stream__", &TableHandle::ArrowCStream,
           nb::arg("requested_schema").none() = nb::none())
      .def_prop_ro("num_rows", [](const TableHandle& t) { return t.table->num_rows(); });
  nb::class_<BatchHandle>(m, "_Batch")
      .def("__arrow_c_array__", &BatchHandle::ArrowCArray,
           nb::arg("requested_schema").none() = nb::none());
  nb::class_<SchemaHandle>(m, "_Schema").def("__arrow_c_schema__", &SchemaHandle::ArrowCSchema);

  nb::class_<LogicalPlan>(m, "LogicalPlan")
      .def("to_json", [](const LogicalPlan& p) { return Unwrap(PlanToJson(p)); })
      .def_static("from_json", [](const std::string& text) { return Unwrap(PlanFromJson(text)); })
      .def("explain", [](const LogicalPlan& p) { return Explain(p); })
      .def("operator_names", [](const LogicalPlan& p) {
        std::vector<std::string> names;
        for (const OperatorSpec& op : p.operators()) names.push_back(op.name);
        return names;
      });

  nb::class_<PlanHandle>(m, "PlanBuilder")
      .def(nb::init<>())
      .def("generator_source", &PlanHandle::GeneratorSource)
      .def("file_source", &PlanHandle::FileSource)
      .def("table_source", &PlanHandle::TableSource)
      .def("map", &PlanHandle::Map)
      .def("function_map", &PlanHandle::FunctionMap)
      .def("filter", &PlanHandle::Filter)
      .def("key_by", &PlanHandle::KeyBy)
      .def("window", &PlanHandle::Window)
      .def("aggregate", &PlanHandle::Aggregate)
      .def("join", &PlanHandle::Join)
      .def("collect_sink", &PlanHandle::CollectSink)
      .def("file_sink", &PlanHandle::FileSink)
      .def("set_shuffle_mode", &PlanHandle::SetShuffleMode)
      .def("build", &PlanHandle::Build);

  nb::class_<RunResult>(m, "RunResult")
      .def_ro("collected", &RunResult::collected)
      .def_ro("summary", &RunResult::summary)
      .def_ro("wall_ns", &RunResult::wall_ns);

  m.def("output_schemas", &OutputSchemas);
  m.def("run_local", &RunLocal, nb::arg("plan"), nb::arg("tables"), nb::arg("functions"),
        nb::arg("job_id"), nb::arg("threads"), nb::arg("memory_budget"),
        nb::arg("state_budget_per_task"), nb::arg("spill_directory"));
  m.def("substrait_to_text", [](nb::bytes serialized) {
    auto buffer = std::make_shared<arrow::Buffer>(
        reinterpret_cast<const uint8_t*>(serialized.c_str()),
        static_cast<int64_t>(serialized.size()));
    return Unwrap(SubstraitToText(*buffer));
  });

  nb::class_<JobOutcome>(m, "JobOutcome")
      .def_ro("job_id", &JobOutcome::job_id)
      .def_ro("state", &JobOutcome::state)
      .def_ro("summary", &JobOutcome::summary)
      .def_ro("wall_ns", &JobOutcome::wall_ns);
  nb::class_<ClusterHandle>(m, "Cluster")
      .def(nb::init<const std::string&, const std::string&, const std::string&,
                    const std::string&, const std::string&, const std::string&>(),
           nb::arg("uri"), nb::arg("token") = "", nb::arg("token_file") = "",
           nb::arg("tls_ca") = "", nb::arg("tls_cert") = "", nb::arg("tls_key") = "")
      .def("run", &ClusterHandle::Run, nb::arg("plan"), nb::arg("name"),
           nb::arg("memory_budget"), nb::arg("state_budget"))
      .def("agents", &ClusterHandle::Agents)
      .def("jobs", &ClusterHandle::Jobs);
  nb::class_<PythonAgentHandle>(m, "PythonAgent")
      .def(nb::init<const std::string&, int32_t, const std::string&, const std::string&, int32_t,
                    int64_t, const std::string&, const std::string&, const std::string&,
                    const std::string&, const std::string&, const std::string&, bool,
                    nb::object>(),
           nb::arg("coordinator"), nb::arg("slots"), nb::arg("name"), nb::arg("host"),
           nb::arg("port"), nb::arg("memory_budget"), nb::arg("spill_dir"), nb::arg("token"),
           nb::arg("token_file"), nb::arg("tls_ca"), nb::arg("tls_cert"), nb::arg("tls_key"),
           nb::arg("verify_clients"), nb::arg("resolve"))
      .def_prop_ro("location", &PythonAgentHandle::location)
      .def_prop_ro("agent_id", &PythonAgentHandle::agent_id)
      .def("wait_registered", &PythonAgentHandle::WaitRegistered)
      .def("serve", &PythonAgentHandle::Serve)
      .def("close", &PythonAgentHandle::Close);

  nb::class_<EngineHandle>(m, "Engine")
      .def(nb::init<const std::string&, int64_t>(), nb::arg("mode"), nb::arg("memory_budget"))
      .def_prop_ro("mode", &EngineHandle::mode)
      .def_prop_ro("location", &EngineHandle::location)
      .def("create_shuffle", &EngineHandle::CreateShuffle)
      .def("send_partition", &EngineHandle::SendPartition)
      .def("send", &EngineHandle::Send)
      .def("finish_sending", &EngineHandle::FinishSending)
      .def("receive_partition", &EngineHandle::ReceivePartition)
      .def("close_shuffle", &EngineHandle::CloseShuffle)
      .def("stats", &EngineHandle::Stats)
      .def("all_stats", &EngineHandle::AllStats)
      .def("shutdown", &EngineHandle::Shutdown);
}
