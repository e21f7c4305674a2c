"""Files for the operator tests, written and checked with pyarrow.

Used by src/sabot/dataflow/file_pyarrow_test.cc.

  operator_files.py write DIR
      writes the reference table (5000 rows: id, x, s, t, flag) as DIR/expected.arrows (IPC
      stream), and split into Parquet files with several row groups (DIR/parquet/...), Arrow IPC
      files (DIR/ipc/...) and a ';'-delimited CSV file of its id, x, s columns (DIR/csv/...).
  operator_files.py check SINK_DIR FORMAT EXPECTED
      reads every part-*.{parquet,arrow,csv} file of SINK_DIR with pyarrow, sorts the rows by id
      and compares them with the columns of EXPECTED (an IPC stream) that the parts have.

Exit status 0 when all is well, 1 with a message otherwise.
"""

import glob
import os
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def reference_table():
    n = 5000
    ids = list(range(n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "x": pa.array([None if i % 9 == 0 else i * 0.25 for i in ids], pa.float64()),
        "s": pa.array([f"s{i % 13}" for i in ids], pa.string()),
        "t": pa.array([1704067200000 + 10 * i for i in ids], pa.timestamp("ms")),
        "flag": pa.array([i % 3 == 0 for i in ids], pa.bool_()),
    })


def write(directory):
    table = reference_table()
    os.makedirs(directory, exist_ok=True)
    with ipc.new_stream(os.path.join(directory, "expected.arrows"), table.schema) as out:
        out.write_table(table)
    os.makedirs(os.path.join(directory, "parquet", "sub"), exist_ok=True)
    pq.write_table(table.slice(0, 3000), os.path.join(directory, "parquet", "a.parquet"),
                   row_group_size=512)
    pq.write_table(table.slice(3000), os.path.join(directory, "parquet", "sub", "b.parquet"),
                   row_group_size=700)
    os.makedirs(os.path.join(directory, "ipc"), exist_ok=True)
    for name, part in (("a.arrow", table.slice(0, 2500)), ("b.arrow", table.slice(2500))):
        with ipc.new_file(os.path.join(directory, "ipc", name), table.schema) as out:
            out.write_table(part, max_chunksize=1000)
    os.makedirs(os.path.join(directory, "csv"), exist_ok=True)
    pacsv.write_csv(table.select(["id", "x", "s"]), os.path.join(directory, "csv", "a.csv"),
                    pacsv.WriteOptions(delimiter=";"))
    return 0


def check(sink_dir, file_format, expected_path):
    expected = ipc.open_stream(expected_path).read_all()
    ext = {"parquet": "parquet", "ipc": "arrow", "csv": "csv"}[file_format]
    parts = sorted(glob.glob(os.path.join(sink_dir, f"part-*.{ext}")))
    if not parts:
        print(f"no part files in {sink_dir}")
        return 1
    # Temporary files of a sink without checkpoints, pending files of an exactly-once one.
    leftovers = [p for p in os.listdir(sink_dir) if p.endswith((".tmp", ".pending"))]
    if leftovers:
        print(f"temporary files left in {sink_dir}: {leftovers}")
        return 1
    tables = []
    for part in parts:
        if file_format == "parquet":
            tables.append(pq.read_table(part))
        elif file_format == "ipc":
            tables.append(ipc.open_file(part).read_all())
        else:
            types = {field.name: field.type for field in expected.schema}
            tables.append(pacsv.read_csv(
                part, convert_options=pacsv.ConvertOptions(column_types=types)))
    got = pa.concat_tables(tables).sort_by("id")
    want = expected.select(got.column_names)
    if not got.equals(want):
        print(f"{file_format} parts in {sink_dir} differ from the reference:")
        print("got", got.schema, got.num_rows, "rows; want", want.schema, want.num_rows, "rows")
        return 1
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "write":
        return write(argv[2])
    if len(argv) == 5 and argv[1] == "check":
        return check(argv[2], argv[3], argv[4])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
