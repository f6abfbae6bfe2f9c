//! One module per command family; [`run`] dispatches a parsed command line.

pub mod admin;
pub mod backup;
pub mod compose;
pub mod deploy;
pub mod env;
pub mod exec;
pub mod follow;
pub mod gc;
pub mod import;
mod job;
pub mod ops;
pub mod status;
pub mod watch;

use crate::cli::{AdminCommand, Cli, Command, ComposeCommand, EnvCommand};
use crate::error::{Error, Exit};
use crate::render::Output;

/// Runs the command; answers the exit code of a command that ran to its
/// end (a job's outcome), or the error that stopped it.
pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let out = Output::new(cli.json);
    let connect = &cli.connect.clone().without_empty();
    match &cli.command {
        Command::Deploy(args) => deploy::deploy(connect, &out, args).await,
        Command::Rollback {
            domain,
            to,
            with_data,
            job,
        } => ops::rollback(connect, &out, domain, *to, *with_data, job).await,
        Command::Scale(args) => ops::scale(connect, &out, args).await,
        Command::Restart {
            domain,
            service,
            job,
        } => ops::restart(connect, &out, domain, service.clone(), job).await,
        Command::Import(args) => import::import(connect, &out, args).await,
        Command::Admin(AdminCommand::JobKey { domains }) => admin::job_key(&out, domains),
        Command::Admin(AdminCommand::NatsUser {
            domains,
            user,
            account_seed,
            account,
        }) => {
            let names = crate::connect::names(connect)?;
            let request = admin::NatsUserRequest {
                domains,
                user: user.as_deref(),
                image_bucket: connect.image_bucket.as_deref(),
                account_seed: account_seed.as_deref(),
                account: account.as_deref(),
            };
            admin::nats_user(&out, &names, &request)
        }
        Command::Stop { domain, job } => ops::stop(connect, &out, domain, job).await,
        Command::Start { domain, job } => ops::start(connect, &out, domain, job).await,
        Command::Remove {
            domain,
            purge_volumes,
            yes,
            job,
        } => ops::remove(connect, &out, domain, *purge_volumes, *yes, job).await,
        Command::Compose(ComposeCommand::Services { domain, node }) => {
            compose::services(connect, &out, domain, node.as_ref()).await
        }
        Command::Compose(ComposeCommand::Logs {
            domain,
            service,
            follow,
            tail,
            node,
        }) => {
            compose::logs(
                connect,
                &out,
                domain,
                service,
                *follow,
                *tail,
                node.as_ref(),
            )
            .await
        }
        Command::Compose(ComposeCommand::Restart {
            domain,
            service,
            job,
        }) => ops::restart(connect, &out, domain, Some(service.clone()), job).await,
        Command::Compose(ComposeCommand::Scale(args)) => ops::scale(connect, &out, args).await,
        Command::Status { domain, node } => {
            status::status(connect, &out, domain.as_ref(), node.as_ref()).await
        }
        Command::Env(EnvCommand::Set { domain, vars, job }) => {
            env::set(connect, &out, domain, vars, job).await
        }
        Command::Env(EnvCommand::Unset { domain, keys, job }) => {
            env::unset(connect, &out, domain, keys, job).await
        }
        Command::Env(EnvCommand::List { domain, node }) => {
            env::list(connect, &out, domain, node.as_ref()).await
        }
        Command::Exec(args) => exec::exec(connect, &out, args).await,
        Command::Backup {
            domain,
            volumes,
            job,
        } => backup::backup(connect, &out, domain, volumes, job).await,
        Command::Backups { domain, node } => {
            backup::list(connect, &out, domain, node.as_ref()).await
        }
        Command::Restore {
            domain,
            backup,
            job,
        } => backup::restore(connect, &out, domain, *backup, job).await,
        Command::Versions { domain, node } => {
            status::versions(connect, &out, domain, node.as_ref()).await
        }
        Command::Nodes => status::nodes(connect, &out).await,
        Command::Dashboard { listen } => crate::dashboard::dashboard(connect, &out, *listen).await,
        Command::Gc {
            older_than,
            dry_run,
        } => gc::gc(connect, &out, *older_than, *dry_run).await,
        Command::Watch {
            domain,
            kind,
            node,
            heartbeats,
        } => {
            let filter = watch::Filter {
                kinds: kind.clone(),
                node: node.clone(),
                heartbeats: *heartbeats,
            };
            watch::watch(connect, &out, domain.as_ref(), filter).await
        }
        Command::Follow { job_id, timeout } => {
            follow::follow_job(connect, &out, job_id, *timeout).await
        }
    }
}
