"""`manage.py search reindex [--source NAME]`, `search repair`, `search bench --entities N`,
`search relevance`."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.core import bench_db


class Command(BaseCommand):
    help = "Search index maintenance: rebuild or repair the index, run the speed or the relevance benchmark."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        reindex = sub.add_parser("reindex", help="Rebuild the index from every registered source.")
        reindex.add_argument("--source", action="append", help="Only this source (repeatable).")
        repair = sub.add_parser("repair", help="Index what has no document, drop documents of what is gone "
                                "(what the beat does every 5 minutes); one JSON line.")
        repair.add_argument("--settle-seconds", type=float, default=None,
                            help="Leave changes younger than this to the index write on its way (default 120).")
        bench = sub.add_parser(
            "bench", help="Generate a catalog, index it and time searches (one JSON line)."
        )
        bench.add_argument("--entities", type=int, default=250_000)
        bench.add_argument("--repeat", type=int, default=5)
        bench.add_argument("--keep", action="store_true", help="Keep the generated entities afterwards.")
        bench_db.add_argument(bench)
        relevance = sub.add_parser(
            "relevance",
            help="Score the ranking (MRR, NDCG@10) on labelled queries over the demo catalog and a noise "
            "catalog; lists the failing queries.",
        )
        relevance.add_argument("--noise", type=int, default=20_000, help="Generated noise entities.")
        relevance.add_argument("--seed", type=int, default=16)
        relevance.add_argument("--keep", action="store_true", help="Keep the noise catalog afterwards.")
        relevance.add_argument("--json", action="store_true", help="One JSON object instead of the summary.")
        relevance.add_argument("--save-tops", type=Path, help="Write each query's first result to this file.")
        relevance.add_argument(
            "--compare-tops", type=Path, help="Compare first results with a file --save-tops wrote."
        )
        relevance.add_argument("--min-mrr", type=float, default=0.0, help="Exit 1 below this MRR.")
        relevance.add_argument("--min-ndcg", type=float, default=0.0, help="Exit 1 below this NDCG@10.")

    def handle(self, *args, **options) -> None:
        if options["action"] == "reindex":
            from portal.search import index

            result = index.rebuild(options.get("source"))
            self.stdout.write(json.dumps(result))
        elif options["action"] == "repair":
            from portal.search import index

            settle = options["settle_seconds"]
            result = index.repair(**({} if settle is None else {"settle_seconds": settle}))
            self.stdout.write(json.dumps(result))
        elif options["action"] == "bench":
            from portal.site import search_bench

            if bench_db.wants_postgres(options):
                return bench_db.rerun(self.stderr)
            self.stdout.write(
                json.dumps(search_bench.run(options["entities"], keep=options["keep"], repeat=options["repeat"]))
            )
        else:
            self._relevance(options)

    def _relevance(self, options: dict) -> None:
        from portal.site import search_relevance

        report = search_relevance.run(noise=options["noise"], seed=options["seed"], keep=options["keep"])
        result = report.as_dict() | {"noise": options["noise"]}
        if options["compare_tops"]:
            expected = json.loads(options["compare_tops"].read_text())
            differ = {q: {"here": top, "there": expected.get(q)} for q, top in report.tops.items()
                      if expected.get(q, top) != top}
            result["tops_compared"] = {"file": str(options["compare_tops"]), "same": len(report.tops) - len(differ),
                                       "different": differ}
        if options["save_tops"]:
            options["save_tops"].write_text(json.dumps(report.tops, indent=1, sort_keys=True) + "\n")
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self._summary(result)
        if report.mrr < options["min_mrr"] or report.ndcg < options["min_ndcg"]:
            raise CommandError(f"below target: MRR {report.mrr:.3f}, NDCG@10 {report.ndcg:.3f}")

    def _summary(self, result: dict) -> None:
        w = self.stdout.write
        w(f"{result['queries']} queries on {result['db']}, {result['noise']} noise entities")
        w(f"MRR      {result['mrr']:.3f}")
        w(f"NDCG@10  {result['ndcg_at_10']:.3f}")
        w(f"first hit provably in place: {result['top_hit_proven']}/{result['queries']}; "
          f"whole page provably exact: {result['page_exact']}/{result['queries']}; "
          f"latency p50/p95 {result['latency_ms']['p50']}/{result['latency_ms']['p95']} ms")
        for category, figures in result["by_category"].items():
            w(f"  {category:16} {figures['queries']:3} queries  MRR {figures['mrr']:.3f}  NDCG {figures['ndcg']:.3f}")
        if "tops_compared" in result:
            compared = result["tops_compared"]
            w(f"first results as in {compared['file']}: {compared['same']}, different: {len(compared['different'])}")
            for query, tops in compared["different"].items():
                w(f"  {query}: {tops['here']} here, {tops['there']} there")
        w(f"failing ({len(result['failing'])}): reciprocal rank < 1 or NDCG < 0.8")
        for f in result["failing"]:
            w(f"  [{f['category']}] {f['user']}: {f['query']!r}  RR {f['rr']}  NDCG {f['ndcg']}"
              + (f"  (corrected: {f['corrected']})" if f["corrected"] else ""))
            w(f"      want {', '.join(f['best']) or 'nothing'}")
            w(f"      got  {', '.join(f['got']) or 'nothing'}")
