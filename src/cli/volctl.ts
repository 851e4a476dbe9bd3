#!/usr/bin/env node
/**
 * volctl: operate a replivol cluster.
 *
 * Exit codes: 0 done, 1 other failure, 2 usage (bad flags or arguments),
 * 3 not found, 4 unavailable (no quorum, nodes down), 5 busy or fenced.
 */
import { Command, CommanderError } from "commander";
import { register as registerCreate } from "./commands/create.js";
import { register as registerFence } from "./commands/fence.js";
import { register as registerInfo } from "./commands/info.js";
import { register as registerLs } from "./commands/ls.js";
import { register as registerNodes } from "./commands/nodes.js";
import { register as registerRead } from "./commands/read.js";
import { register as registerResync } from "./commands/resync.js";
import { register as registerResyncRate } from "./commands/resync-rate.js";
import { register as registerReplace } from "./commands/replace.js";
import { register as registerRm } from "./commands/rm.js";
import { register as registerScrub } from "./commands/scrub.js";
import { register as registerStatus } from "./commands/status.js";
import { register as registerWrite } from "./commands/write.js";
import { EXIT, exitCodeOf, reportError } from "./context.js";

function program(): Command {
  const p = new Command("volctl")
    .description("Operate a replivol cluster: volumes, nodes, fencing, raw I/O")
    .option("--cluster <file>", "cluster file (default: $REPLIVOL_CLUSTER)")
    .option("--json", "print JSON for scripts instead of tables")
    .showHelpAfterError("(run volctl --help for usage)")
    .exitOverride();
  for (const register of [registerStatus, registerNodes, registerCreate, registerLs, registerInfo, registerRm, registerFence, registerWrite, registerRead, registerResync, registerResyncRate, registerScrub, registerReplace]) {
    register(p);
  }
  for (const c of p.commands) c.exitOverride();
  return p;
}

async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes("--json");
  try {
    await program().parseAsync([...argv], { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed its message (or the help) already.
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" ? EXIT.ok : EXIT.usage;
    }
    reportError(err, json);
    return exitCodeOf(err);
  }
}

process.exitCode = await main(process.argv.slice(2));
