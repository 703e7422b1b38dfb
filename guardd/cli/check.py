"""``guardd check``: one line with perfdata and a monitoring plugin's exit code (contract §4, §7, §9). It gathers
what the verdict needs — the budgets' evaluations, health rules, the switch (the store's on a shared store) and the
guard's liveness, lines set aside, failing notifiers, ledger paths that lead nowhere or are gone, rotated files that
may hold lines never counted, dropped alerts, cluster warnings, budgets whose match selects nothing — and leaves the
verdict to :func:`guardd.core.check_line.check_result` (pure)."""

from __future__ import annotations

from argparse import Namespace
from datetime import UTC, datetime

from guardd.cli.commands import SET_ASIDE_WARNS_FOR, _budgets, _health, opened
from guardd.core.switch import GLOBAL_SCOPE


async def cmd_check(args: Namespace) -> int:
    from guardd.core.check_line import check_result
    from guardd.services import status

    try:
        async with opened(args, readonly=True) as ctx:
            now = datetime.now(UTC)
            budgets = _budgets(ctx, args.budget)
            evaluations = await status.with_overrides(await ctx.evaluator.evaluate_all(now, budgets), ctx.state)
            health = await _health(ctx, now) if args.budget is None else []
            doc, guard, _error = status.read_switch(ctx.config, now)
            shared = None
            warnings: list[str] = []
            if ctx.stores.cluster is not None:  # contract §9: the switch the leader committed, not this host's file
                from guardd.services.shared_switch import read_shared

                cluster = await ctx.stores.cluster.status()
                shared = await read_shared(ctx.config, ctx.state, cluster, now)
                doc, guard = shared.document, shared.guard
                # what status warns of at its top (a silent instance, differing configurations, no leader) is
                # never a silent OK here
                listed = cluster.get("warnings")
                warnings = [str(w) for w in listed] if isinstance(listed, list) else []
                if shared.warns_check and shared.warning:
                    warnings.append(shared.warning)
            if ctx.config.has_management_key:  # a key guardd should have switched and has not: never a silent OK
                from guardd.services.openrouter.keys import key_warnings, stored_errors

                listed = await ctx.remote.listed_keys()
                doc_now = await ctx.state.switch_doc()
                warnings += key_warnings(ctx.config, listed, doc_now, await stored_errors(ctx.state))
            set_aside = await ctx.events.set_aside_by_file(now - SET_ASIDE_WARNS_FOR)
            failing = await status.failing_notifiers(ctx.config, ctx.state)
            warnings += [drop["text"] for drop in await status.dropped_alerts(ctx.state, now)]
            read = {cp.ledger for cp in await ctx.events.checkpoints()}
            unmatched = status.unmatched_ledgers(ctx.config, read)
            warnings += [gone["warning"] for gone in status.missing_ledgers(ctx.config, read)]
            never_matched = ctx.evaluator.gaps(budgets)
    except Exception as exc:  # a monitoring plugin reports any failure, a wrong --budget included, as UNKNOWN
        print(f"GUARDD UNKNOWN - {exc}")
        return 3
    store = status.store_health(ctx.config)
    if store["ok"] is False:  # contract §7: a running daemon that cannot write its state is CRITICAL
        print(f"GUARDD CRITICAL - {store['error']} (since {store['since']}); nothing is lost, ingestion resumes")
        return 2
    if not guard.alive:
        print(f"GUARDD UNKNOWN - {status.dead_line(guard, ctx.config.zone)}: {guard.reason}")
        return 3
    scopes = (doc or {}).get("scopes", {})
    names = {b.name for b in budgets} | {GLOBAL_SCOPE}
    tripped = any(isinstance(s, dict) and s.get("tripped") for n, s in scopes.items() if n in names)
    # a top-level trip that no scope explains stops every client (as guardd.client reads it): CRITICAL too
    unexplained = (doc or {}).get("tripped") is True and not any(
        isinstance(s, dict) and s.get("tripped") for s in scopes.values()
    )
    tripped = tripped or unexplained
    drift = status.config_state(ctx.config)["warning"]
    if drift:  # the daemon enforces the configuration it loaded, not the file these figures come from
        warnings.append(drift)
    unreadable = status.ledger_errors(ctx.config)
    missed = status.ledger_warnings(ctx.config)
    code, line = check_result(
        evaluations,
        tripped,
        health,
        set_aside,
        unreadable=unreadable,
        failing_notifiers=failing,
        unmatched=unmatched,
        warnings=warnings,
        missed=missed,
        never_matched=never_matched,
    )
    print(line)
    return code
