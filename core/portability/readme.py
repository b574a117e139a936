"""The README.md written inside every export archive (English, then French)."""

TEXT = """\
# civicsense tenant export

This archive holds all the data of one town (tenant) of a civicsense instance, as written
by `civicsense export --tenant SLUG`. It can be read with any spreadsheet, database or
script, and loaded into another civicsense instance with `civicsense import FILE`.

## Contents

- `manifest.json`: format name and version, civicsense version, the tenant (id, slug,
  name), the export time (UTC), and for every other file its path, size and SHA-256;
  for data files also the table, the columns and the number of rows. It also lists the
  columns and tables left out, and why.
- `data/<table>.csv`: one file per table, in loading order (a row's references come
  first in the manifest).
- `schema/<table>.json`: the description of each CSV file, a Frictionless Data "tabular
  data resource" (fields, types, primary and foreign keys) plus each column's PostgreSQL
  type (`pgType`) and encoding.

## CSV format

- UTF-8, comma-separated, a header row, fields quoted with `"` when needed and `"`
  doubled inside a quoted field (RFC 4180); lines end with LF.
- An empty unquoted field is NULL (no value); an empty text is written `""`.
- Timestamps: ISO 8601 with their UTC offset (`2026-11-02T09:30:00+00:00`); dates
  `YYYY-MM-DD`.
- Booleans: `true` / `false`. Numbers: decimal point, full precision.
- JSON columns: the JSON text. Arrays: a JSON array.
- Binary columns (photos, attachments, raw payloads): base64, on one line.

## Which rows

Every row of the tenant (its `tenant_id`, or `id` in `tenants.csv`), plus the rows they
reference that belong to no town: the catalogue's solutions, versions and price lines
that quotes and orders name, and platform operators' accounts named by the town's rows.

## What is never exported

Secrets: password hashes, second-factor (TOTP) secrets and recovery codes, API key
hashes, payment operators' and webhooks' signing secrets, devices' LoRaWAN keys. After
an import, users set a new password, API keys and signing secrets are issued again;
the devices' keys stay in the LoRaWAN network server. Computed data (hourly rollups,
search vectors) is recomputed on import.

## Integrity

Check each file's SHA-256 against `manifest.json`. `civicsense import` does so before
writing anything, and refuses an archive that is incomplete or altered. The SHA-256 of
the archive itself is printed by `civicsense export`: keep it with the archive.

---

# Export des données d'une commune (civicsense)

Cette archive contient toutes les données d'une commune (locataire) d'une instance
civicsense, écrites par `civicsense export --tenant SLUG`. Elle se lit avec un tableur,
une base de données ou un script, et se recharge dans une autre instance civicsense par
`civicsense import FICHIER`.

## Contenu

- `manifest.json` : format et version, version de civicsense, la commune (id, slug,
  nom), l'heure de l'export (UTC), et pour chaque autre fichier son chemin, sa taille et
  son empreinte SHA-256 ; pour les fichiers de données, la table, les colonnes et le
  nombre de lignes. Il liste aussi les colonnes et tables écartées, et pourquoi.
- `data/<table>.csv` : un fichier par table, dans l'ordre de chargement.
- `schema/<table>.json` : la description de chaque fichier CSV (ressource tabulaire
  Frictionless Data : champs, types, clés primaires et étrangères) avec le type
  PostgreSQL (`pgType`) et l'encodage de chaque colonne.

## Format CSV

- UTF-8, séparateur virgule, ligne d'en-tête, guillemets `"` si nécessaire (RFC 4180),
  fins de ligne LF.
- Champ vide sans guillemets : valeur absente (NULL) ; texte vide : `""`.
- Horodatages ISO 8601 avec décalage horaire ; dates `AAAA-MM-JJ`.
- Booléens `true` / `false` ; nombres avec point décimal.
- Colonnes JSON : le texte JSON ; tableaux : un tableau JSON.
- Colonnes binaires (photos, pièces jointes, trames brutes) : base64 sur une ligne.

## Ce qui n'est jamais exporté

Les secrets : empreintes de mots de passe, secrets et codes de secours de double
authentification, empreintes des clés d'API, secrets de signature des opérateurs de
paiement et des webhooks, clés LoRaWAN des capteurs. Après un import, chaque utilisateur
choisit un nouveau mot de passe ; les clés d'API et secrets de signature sont émis à
nouveau. Les données calculées (agrégats horaires) sont recalculées à l'import.

## Intégrité

Comparez l'empreinte SHA-256 de chaque fichier avec `manifest.json` ; `civicsense import`
le fait avant toute écriture et refuse une archive incomplète ou modifiée.
"""
