// The chart itself, drawn by uPlot: this module is imported lazily (React.lazy), so uPlot and its
// stylesheet load the first time a chart is shown, not with the console. Vite emits the stylesheet
// as a file of its own that the chunk links: style-src 'self' allows it, and uPlot sets its sizes
// through the CSSOM (element.style), which the Content-Security-Policy does not restrict.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const height = 300; // px
const minWidth = 280; // px: a phone's width less the page's padding

export default function UplotChart({ times, values, label }: { times: number[]; values: number[]; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current!;
    const width = () => Math.max(minWidth, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height,
        // the legend is a table axe-core cannot make sense of; the caption says what it would
        legend: { show: false },
        scales: { x: { time: true } },
        series: [{}, { label, stroke: '#1f5fbf', width: 2, points: { show: values.length <= 60 } }],
      },
      [times, values],
      el,
    );
    const resized = new ResizeObserver(() => plot.setSize({ width: width(), height }));
    resized.observe(el);
    return () => {
      resized.disconnect();
      plot.destroy();
    };
  }, [times, values, label]);
  return <div ref={box} className="chart" data-testid="chart" aria-hidden="true" />;
}
