//! A traced service with `kafkit::otel`: it writes a few orders, then
//! consumes them in a group, processes each inside a `process` span and
//! produces the result, exporting every span to stdout. Each output's
//! `send` span is a child of the `process` span, itself a child of the
//! order's own `send` span, so one trace runs from the first producer to
//! the output record's `traceparent` header. Terminates by itself, after
//! printing the client metrics.
//!
//! ```sh
//! cargo run -p kafkit --features otel --example traced_service              # broker at 127.0.0.1:9092
//! KAFKIT_BROKERS=127.0.0.1:19092 cargo run -p kafkit --features otel --example traced_service
//! ```

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use kafkit::admin::NewTopic;
use kafkit::otel::KafkitOtel;
use kafkit::writer::Message;
use kafkit::{Admin, Reader, Writer};
use opentelemetry::context::FutureExt;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

const ORDERS: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let brokers = std::env::var("KAFKIT_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let (input, output) = (format!("orders-{run}"), format!("invoices-{run}"));

    // The application's OpenTelemetry set-up: spans and metrics to stdout.
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default()).build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    // The only kafkit-specific line: the hook, given to every client.
    let otel = KafkitOtel::new();

    let admin = Admin::builder([brokers.as_str()]).build().await?;
    let topics = [
        NewTopic::new(input.as_str(), 1),
        NewTopic::new(output.as_str(), 1),
    ];
    for (name, result) in admin.create_topics(&topics, false).await? {
        result.map_err(|e| format!("create {name}: {e}"))?;
    }

    // An upstream service writes orders: each gets a `send` span, whose
    // context travels in the record's headers.
    let upstream = Writer::builder([brokers.as_str()])
        .topic(&input)
        .hooks(otel.hooks())
        .build()
        .await?;
    let orders: Vec<Message> = (0..ORDERS)
        .map(|i| Message::new(format!("order {i}")).with_key(format!("customer-{i}")))
        .collect();
    for result in upstream.write_messages(&orders).await? {
        result?;
    }
    upstream.close().await?;

    // This service: consume, process inside the `process` span, produce.
    let writer = Writer::builder([brokers.as_str()])
        .topic(&output)
        .hooks(otel.hooks())
        .build()
        .await?;
    let mut reader = Reader::builder([brokers.as_str()])
        .group_id(format!("invoicing-{run}"))
        .topics([input.as_str()])
        .hooks(otel.hooks())
        .build()
        .await?;
    for _ in 0..ORDERS {
        let order = reader.fetch_message().await?;
        let span = otel.process_span(&order.as_consume_record());
        let invoice = Message::new(format!(
            "invoice for {}",
            String::from_utf8_lossy(order.value_bytes())
        ));
        // Sent with the process span current: its `send` span is a child.
        let delivery = writer
            .send(invoice)
            .with_context(span.context().clone())
            .await?;
        delivery.await?;
        span.end();
        reader.commit_messages(std::slice::from_ref(&order)).await?;
    }
    reader.close().await?;
    writer.close().await?;

    tracer_provider.shutdown()?;
    meter_provider.shutdown()?;
    eprintln!("{ORDERS} orders invoiced from {input} to {output}; spans and metrics above");
    Ok(())
}
