"""Lead lists in and out of datasets: detection, mapping, normalisation and the importer.

- `dialect`: CSV or not, encoding, delimiter, records with the line numbers a person sees;
- `preview`: the upload preview (columns, samples, suggested mapping, rows);
- `mapping`: header/value-based suggestions and mapping validation;
- `fastphone`, `normalise`, `rows`: one CSV record -> one staged lead row or a row error;
- `importer`: the streaming COPY + set-based move shared by the API and `dbr import`;
- `multipart`: the streaming upload receiver (size cap while reading).
"""
